//! Keys and values exactly as etcd's Go `benchmark` builds them.
//!
//! A key is the key index written with Go's `binary.PutVarint` (a zig-zag signed varint) into a
//! zero-filled buffer of `--key-size` bytes, so keys are binary and all have the same length.
//! The same flags therefore touch the same keys in both tools.

use rand::Rng;
use rand::rngs::SmallRng;

/// The most bytes a zig-zag varint of an `i64` takes.
const MAX_VARINT_LEN: usize = 10;

/// Writes `x` as a zig-zag signed varint (Go's `binary.PutVarint`) at the start of `buf` and
/// returns how many bytes it took. Panics if `buf` is too short; see [`varint_len`].
pub(crate) fn put_varint(buf: &mut [u8], x: i64) -> usize {
    put_uvarint(buf, zigzag(x))
}

/// How many bytes [`put_varint`] writes for `x`.
pub(crate) fn varint_len(x: i64) -> usize {
    let mut ux = zigzag(x);
    let mut n = 1;
    while ux >= 0x80 {
        ux >>= 7;
        n += 1;
    }
    n
}

fn zigzag(x: i64) -> u64 {
    // Non-negative numbers map to even, negative ones to odd codes.
    let ux = (x as u64) << 1;
    if x < 0 { !ux } else { ux }
}

fn put_uvarint(buf: &mut [u8], mut x: u64) -> usize {
    let mut i = 0;
    while x >= 0x80 {
        buf[i] = (x as u8) | 0x80;
        x >>= 7;
        i += 1;
    }
    buf[i] = x as u8;
    i + 1
}

/// How keys are picked and laid out: `prefix` followed by the varint of the key index in a
/// zero-filled field of `size` bytes.
#[derive(Debug, Clone)]
pub(crate) struct KeySpec {
    /// Bytes put in front of every key (empty by default).
    pub(crate) prefix: Vec<u8>,
    /// Width of the varint field, `--key-size`.
    pub(crate) size: usize,
    /// Number of distinct keys, `--key-space-size` (at least 1).
    pub(crate) space: u64,
    /// Walk the key space in order instead of picking keys at random.
    pub(crate) sequential: bool,
}

impl KeySpec {
    /// Checks that every key index fits in `size` bytes, as Go would otherwise panic.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.space == 0 {
            return Err("--key-space-size must be at least 1".into());
        }
        let largest = i64::try_from(self.space - 1)
            .map_err(|_| format!("--key-space-size {} is too large", self.space))?;
        let need = varint_len(largest);
        if self.size < need {
            return Err(format!(
                "--key-size {} is too small for --key-space-size {}: keys need {need} bytes",
                self.size, self.space
            ));
        }
        Ok(())
    }

    /// The key with index `index` (taken modulo the key space).
    pub(crate) fn key(&self, index: u64) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + self.size.max(MAX_VARINT_LEN));
        key.extend_from_slice(&self.prefix);
        let start = key.len();
        key.resize(start + self.size, 0);
        put_varint(&mut key[start..], (index % self.space) as i64);
        key
    }

    /// The key of request number `request`: `request` itself when sequential, else a random
    /// index in the key space.
    pub(crate) fn key_for_request(&self, request: u64, rng: &mut SmallRng) -> Vec<u8> {
        let index = if self.sequential {
            request
        } else {
            rng.random_range(0..self.space)
        };
        self.key(index)
    }
}

/// `size` random bytes (Go's benchmark uses one random value for every put).
pub(crate) fn random_value(size: usize, rng: &mut impl Rng) -> Vec<u8> {
    let mut v = vec![0u8; size];
    rng.fill(v.as_mut_slice());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn enc(x: i64) -> Vec<u8> {
        let mut buf = [0u8; MAX_VARINT_LEN];
        let n = put_varint(&mut buf, x);
        assert_eq!(n, varint_len(x), "varint_len({x})");
        buf[..n].to_vec()
    }

    #[test]
    fn varint_matches_go_put_varint() {
        // Byte strings as produced by Go's binary.PutVarint.
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(1), [0x02]);
        assert_eq!(enc(-1), [0x01]);
        assert_eq!(enc(2), [0x04]);
        assert_eq!(enc(-2), [0x03]);
        assert_eq!(enc(63), [0x7e]);
        assert_eq!(enc(-64), [0x7f]);
        assert_eq!(enc(64), [0x80, 0x01]);
        assert_eq!(enc(300), [0xd8, 0x04]);
        assert_eq!(enc(8191), [0xfe, 0x7f]);
        assert_eq!(enc(8192), [0x80, 0x80, 0x01]);
        assert_eq!(
            enc(i64::MAX),
            [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(
            enc(i64::MIN),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    fn spec(size: usize, space: u64, sequential: bool) -> KeySpec {
        KeySpec {
            prefix: Vec::new(),
            size,
            space,
            sequential,
        }
    }

    #[test]
    fn keys_are_zero_padded_to_key_size() {
        let s = spec(8, 1000, true);
        assert_eq!(s.key(0), [0u8; 8]);
        assert_eq!(s.key(1), [2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(s.key(300), [0xd8, 0x04, 0, 0, 0, 0, 0, 0]);
        // Indexes wrap around the key space.
        assert_eq!(s.key(1001), s.key(1));
        let p = KeySpec {
            prefix: b"foo".to_vec(),
            ..spec(2, 10, false)
        };
        assert_eq!(p.key(1), b"foo\x02\x00");
    }

    #[test]
    fn sequential_and_random_choice() {
        let mut rng = SmallRng::seed_from_u64(7);
        let seq = spec(8, 3, true);
        let picked: Vec<_> = (0..4).map(|i| seq.key_for_request(i, &mut rng)).collect();
        assert_eq!(picked, [seq.key(0), seq.key(1), seq.key(2), seq.key(0)]);
        // Go's default key space of 1 sends every request to key 0.
        let one = spec(8, 1, false);
        assert!((0..50).all(|i| one.key_for_request(i, &mut rng) == [0u8; 8]));
        let random = spec(8, 50, false);
        assert!((0..500).all(|i| {
            let k = random.key_for_request(i, &mut rng);
            (0..50).any(|j| random.key(j) == k)
        }));
    }

    #[test]
    fn key_size_must_hold_the_largest_index() {
        assert!(spec(1, 64, false).validate().is_ok()); // largest index 63 -> 1 byte
        assert!(spec(1, 65, false).validate().is_err()); // 64 -> 2 bytes
        assert!(spec(2, 8192, false).validate().is_ok());
        assert!(spec(2, 8193, false).validate().is_err());
        assert!(spec(8, 0, false).validate().is_err());
        assert!(spec(0, 1, false).validate().is_err());
    }

    #[test]
    fn values_have_the_requested_size() {
        let mut rng = SmallRng::seed_from_u64(1);
        assert_eq!(random_value(256, &mut rng).len(), 256);
        assert!(random_value(0, &mut rng).is_empty());
    }
}
