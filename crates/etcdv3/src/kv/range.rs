//! Key ranges: one key, a prefix, a half-open range, everything from a key, or all keys.

use std::fmt;
use std::ops::{Range, RangeFrom, RangeFull};

/// The `range_end` etcd reads as "to the end of the keyspace" (`WithFromKey` in Go).
const END_OF_KEYSPACE: &[u8] = b"\0";

/// A set of keys: a single key, or the half-open interval `[key, range_end)`.
///
/// etcd encodes ranges with two byte strings. This type builds them for you and gets the edge
/// cases right: the prefix of an all-`0xff` key runs to the end of the keyspace, and an empty
/// prefix means every key.
///
/// ```
/// use etcdv3::KeyRange;
///
/// assert_eq!(KeyRange::prefix("a/").range_end(), b"a0");
/// assert_eq!(KeyRange::prefix(b"a\xff".to_vec()).range_end(), b"b");
/// assert_eq!(KeyRange::from("k"), KeyRange::key("k"));
/// assert_eq!(KeyRange::from("a".."c"), KeyRange::range("a", "c"));
/// assert_eq!(KeyRange::from(..), KeyRange::all());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct KeyRange {
    key: Vec<u8>,
    range_end: Vec<u8>,
}

impl KeyRange {
    /// Exactly one key.
    pub fn key(key: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            key: key.into(),
            range_end: Vec::new(),
        }
    }

    /// Every key that starts with `prefix`. An empty prefix means every key.
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        let key = prefix.into();
        if key.is_empty() {
            return Self::all();
        }
        let range_end = prefix_end(&key);
        KeyRange { key, range_end }
    }

    /// Keys in `[start, end)`. An empty `end` means only `start`; `end == b"\0"` means every key
    /// from `start` on.
    pub fn range(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            key: start.into(),
            range_end: end.into(),
        }
    }

    /// Every key greater than or equal to `start`. An empty `start` means every key.
    pub fn from_key(start: impl Into<Vec<u8>>) -> Self {
        let mut key = start.into();
        if key.is_empty() {
            key = END_OF_KEYSPACE.to_vec();
        }
        KeyRange {
            key,
            range_end: END_OF_KEYSPACE.to_vec(),
        }
    }

    /// Every key in the keyspace.
    pub fn all() -> Self {
        KeyRange {
            key: END_OF_KEYSPACE.to_vec(),
            range_end: END_OF_KEYSPACE.to_vec(),
        }
    }

    /// The first key of the range (the only key, for a single-key range).
    pub fn start(&self) -> &[u8] {
        &self.key
    }

    /// The exclusive end of the range as etcd encodes it: empty for a single key, `b"\0"` for
    /// "to the end of the keyspace".
    pub fn range_end(&self) -> &[u8] {
        &self.range_end
    }

    /// Whether this range names exactly one key.
    pub fn is_single_key(&self) -> bool {
        self.range_end.is_empty()
    }

    /// Turns this range into the prefix range of its start key.
    pub(crate) fn into_prefix(self) -> Self {
        Self::prefix(self.key)
    }

    /// Turns this range into "from its start key to the end of the keyspace".
    pub(crate) fn into_from_key(self) -> Self {
        Self::from_key(self.key)
    }

    pub(crate) fn with_end(self, end: impl Into<Vec<u8>>) -> Self {
        Self::range(self.key, end)
    }

    pub(crate) fn into_parts(self) -> (Vec<u8>, Vec<u8>) {
        (self.key, self.range_end)
    }

    /// Whether `key` falls in this range.
    pub fn contains(&self, key: &[u8]) -> bool {
        if self.range_end.is_empty() {
            return key == self.key.as_slice();
        }
        if key < self.key.as_slice() {
            return false;
        }
        self.range_end == END_OF_KEYSPACE || key < self.range_end.as_slice()
    }
}

/// The smallest key greater than every key that starts with `prefix`.
///
/// The last byte below `0xff` is incremented and the bytes after it dropped. When every byte is
/// `0xff` (or the prefix is empty) no such key exists and the result is `b"\0"`, etcd's "end of the
/// keyspace".
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|&b| b < 0xff) {
        Some(i) => {
            let mut end = prefix[..=i].to_vec();
            end[i] += 1;
            end
        }
        None => END_OF_KEYSPACE.to_vec(),
    }
}

impl fmt::Debug for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = String::from_utf8_lossy(&self.key);
        if self.range_end.is_empty() {
            write!(f, "KeyRange({key:?})")
        } else {
            let end = String::from_utf8_lossy(&self.range_end);
            write!(f, "KeyRange({key:?}..{end:?})")
        }
    }
}

macro_rules! key_range_from {
    ($($t:ty),*) => {$(
        impl From<$t> for KeyRange {
            fn from(key: $t) -> Self {
                KeyRange::key(key)
            }
        }
        impl From<Range<$t>> for KeyRange {
            fn from(r: Range<$t>) -> Self {
                KeyRange::range(r.start, r.end)
            }
        }
        impl From<RangeFrom<$t>> for KeyRange {
            fn from(r: RangeFrom<$t>) -> Self {
                KeyRange::from_key(r.start)
            }
        }
    )*};
}

key_range_from!(&str, String, &[u8], Vec<u8>);

impl<const N: usize> From<&[u8; N]> for KeyRange {
    fn from(key: &[u8; N]) -> Self {
        KeyRange::key(key.as_slice())
    }
}

impl From<RangeFull> for KeyRange {
    fn from(_: RangeFull) -> Self {
        KeyRange::all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte_below_ff() {
        assert_eq!(prefix_end(b"a"), b"b");
        assert_eq!(prefix_end(b"abc"), b"abd");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"a\xff\xff"), b"b");
        assert_eq!(prefix_end(b"\x00"), b"\x01");
        assert_eq!(prefix_end(b"a\xfe\xff"), b"a\xff");
    }

    #[test]
    fn prefix_of_all_ff_runs_to_end_of_keyspace() {
        assert_eq!(prefix_end(b"\xff"), b"\0");
        assert_eq!(prefix_end(b"\xff\xff\xff"), b"\0");
        assert_eq!(KeyRange::prefix(b"\xff\xff".to_vec()).range_end(), b"\0");
    }

    #[test]
    fn empty_prefix_and_empty_from_key_mean_everything() {
        assert_eq!(KeyRange::prefix(""), KeyRange::all());
        assert_eq!(KeyRange::from_key(""), KeyRange::all());
        assert_eq!(KeyRange::all().start(), b"\0");
        assert_eq!(KeyRange::all().range_end(), b"\0");
    }

    #[test]
    fn conversions() {
        assert_eq!(KeyRange::from("k").range_end(), b"");
        assert!(KeyRange::from("k").is_single_key());
        assert_eq!(
            KeyRange::from(String::from("a")..String::from("b")),
            KeyRange::range("a", "b")
        );
        assert_eq!(KeyRange::from("m"..), KeyRange::from_key("m"));
        assert_eq!(KeyRange::from(b"xy"), KeyRange::key("xy"));
        assert_eq!(KeyRange::from(vec![1u8, 2]).start(), &[1, 2]);
    }

    #[test]
    fn contains_matches_etcd_semantics() {
        let p = KeyRange::prefix("a/");
        assert!(p.contains(b"a/"));
        assert!(p.contains(b"a/zzz"));
        assert!(!p.contains(b"a0"));
        assert!(!p.contains(b"a"));
        let single = KeyRange::key("k");
        assert!(single.contains(b"k") && !single.contains(b"k1"));
        let from = KeyRange::from_key("m");
        assert!(from.contains(b"m") && from.contains(b"\xff\xff") && !from.contains(b"l"));
        assert!(KeyRange::all().contains(b"\0") && KeyRange::all().contains(b"anything"));
        let r = KeyRange::range("b", "d");
        assert!(r.contains(b"b") && r.contains(b"c\xff") && !r.contains(b"d"));
    }

    #[test]
    fn builders_rewrite_ranges() {
        assert_eq!(KeyRange::key("a").into_prefix(), KeyRange::prefix("a"));
        assert_eq!(KeyRange::key("a").into_from_key(), KeyRange::from_key("a"));
        assert_eq!(KeyRange::key("a").with_end("c"), KeyRange::range("a", "c"));
        assert_eq!(
            KeyRange::prefix("a").into_parts(),
            (b"a".to_vec(), b"b".to_vec())
        );
    }
}
