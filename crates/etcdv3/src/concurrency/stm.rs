//! Software transactional memory: run a closure that reads and writes keys, and commit its
//! writes only if what it read is still current; otherwise run it again.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::mem;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::kv::{Compare, DeleteOp, GetOp, GetResponse, KeyValue, Kv, Op, OpResponse, PutOp};

/// How an [`Stm`] transaction is isolated from others: which reads it sees and what it checks
/// at commit.
///
/// The levels are Go's (`concurrency.Isolation`), with the same names and meaning. From the
/// strongest to the weakest:
///
/// | level | reads | commit fails (and the closure runs again) when |
/// |---|---|---|
/// | [`SerializableSnapshot`](Isolation::SerializableSnapshot) | a snapshot at the first read's revision | a key it read changed, or a key it writes changed after the snapshot |
/// | [`Serializable`](Isolation::Serializable) | a snapshot at the first read's revision | a key it read changed |
/// | [`RepeatableReads`](Isolation::RepeatableReads) | each key as the member serving it has it, then the same value for the rest of the attempt | a key it read changed |
/// | [`ReadCommitted`](Isolation::ReadCommitted) | each key as the member serving it has it | never: it always commits |
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Isolation {
    /// Serializable, and a write also conflicts with any change to the written key after the
    /// snapshot, read or not: the default.
    ///
    /// The first read is linearizable and fixes the snapshot revision; later reads are
    /// serializable reads at that revision. At commit, every key read must still have the
    /// revision it was read at (0 if it did not exist), and every key written must not have
    /// changed after the snapshot.
    #[default]
    SerializableSnapshot,
    /// Like [`SerializableSnapshot`](Isolation::SerializableSnapshot), but only the keys read
    /// are checked at commit: a key written but never read may have changed meanwhile.
    Serializable,
    /// Every read is serializable (served by one member, possibly behind the others) and
    /// remembered for the rest of the attempt; the commit checks that every key read is
    /// unchanged.
    RepeatableReads,
    /// Every read is serializable and remembered for the attempt, and the commit checks
    /// nothing: it always succeeds at the first attempt.
    ///
    /// Updates can be lost: two transactions that read the same counter and both write it
    /// plus one commit both, and the counter grows by one. Use it only when each write stands
    /// on its own.
    ReadCommitted,
}

impl Isolation {
    /// Reads share one snapshot revision, and a failed commit reads the keys again for the
    /// next attempt.
    fn snapshots(self) -> bool {
        matches!(
            self,
            Isolation::SerializableSnapshot | Isolation::Serializable
        )
    }
}

/// Runs a closure as a transaction over any [`Kv`]: reads go to etcd, writes are buffered and
/// committed in one etcd transaction that checks the reads; the closure runs again until that
/// commit succeeds. Go's `concurrency.NewSTM`.
///
/// See [`Isolation`] for what each level guarantees, and [`StmTxn`] for what the closure can
/// do.
///
/// # Example
///
/// ```no_run
/// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
/// use etcdv3::{Isolation, Stm};
///
/// let kv = client.kv();
/// let next = Stm::new(&kv)
///     .isolation(Isolation::Serializable)
///     .max_attempts(10)
///     .run(|txn| async move {
///         let n: u64 = match txn.get("counter").await? {
///             Some(v) => String::from_utf8_lossy(&v).parse().unwrap_or(0),
///             None => 0,
///         };
///         txn.put("counter", (n + 1).to_string())?;
///         Ok::<_, etcdv3::Error>(n + 1)
///     })
///     .await?;
/// println!("counter is now {next}");
/// # Ok(()) }
/// ```
///
/// # Behavior
///
/// - **One attempt** calls the closure with a fresh [`StmTxn`]: [`get`](StmTxn::get) and
///   [`rev`](StmTxn::rev) read from etcd (each key once per attempt; later reads of it, and
///   reads of keys the attempt wrote, are answered locally), [`put`](StmTxn::put) and
///   [`delete`](StmTxn::delete) only record the write. When the closure returns `Ok`, one etcd
///   transaction commits the writes if the reads are still current (see [`Isolation`]).
/// - **Conflicts** make the closure run again with empty read and write sets. Under the two
///   serializable levels the failed commit already read the keys the attempt had read, so the
///   next attempt starts from those values without asking etcd again. There is no pause
///   between attempts and, unless [`max_attempts`](Stm::max_attempts) is set, no limit.
/// - **Errors** end the run without writing anything: an `Err` returned by the closure is
///   returned as is; an error from etcd (a read, the commit) or from bad input (an empty key)
///   is returned too, converted into the closure's error type, even when the closure ignored
///   it and returned `Ok`. A commit that failed after being sent may still have been applied:
///   see [`Error::may_have_been_applied`].
/// - **Side effects** inside the closure happen once per attempt: keep them out of it, or
///   make them idempotent.
/// - **Tasks**: the handle is passed by value, so the closure's future owns what it uses and
///   `run`'s future is `Send` when the closure and its future are: it can be
///   `tokio::spawn`ed. (An async closure taking `&mut` would lose that: Rust cannot yet
///   state that the future it returns is `Send`.)
/// - **Cancellation**: dropping the future stops the run; a commit already sent may still be
///   applied.
/// - **Reads on several members**: a snapshot read that reaches a member which has not yet
///   applied the snapshot revision is read again linearizably at that revision, which waits
///   for the member to catch up (Go's STM fails with `ErrFutureRev` instead).
#[derive(Debug, Clone)]
#[must_use = "an Stm does nothing until run"]
pub struct Stm<K> {
    kv: K,
    isolation: Isolation,
    prefetch: Vec<Vec<u8>>,
    max_attempts: Option<u32>,
}

impl<K: Kv + Clone> Stm<K> {
    /// An STM over `kv` (a [`KvClient`](crate::KvClient) or any wrapper), with
    /// [`Isolation::SerializableSnapshot`], no prefetch and no attempt limit.
    pub fn new(kv: &K) -> Self {
        Stm {
            kv: kv.clone(),
            isolation: Isolation::default(),
            prefetch: Vec::new(),
            max_attempts: None,
        }
    }

    /// The isolation level. Default: [`Isolation::SerializableSnapshot`].
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Keys every attempt reads, all in one request, before the closure runs (Go's
    /// `WithPrefetch`): saves a round trip per key the closure reads anyway. Adds to the
    /// keys given before. Default: none.
    pub fn prefetch<I>(mut self, keys: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Vec<u8>>,
    {
        self.prefetch.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Gives up after `attempts` commits that found conflicts, with an error for which
    /// [`Error::is_conflict`] holds. Default: no limit, as in Go. 0 is refused by
    /// [`run`](Stm::run) with [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Runs `apply` until its writes commit, and returns what it returned in the attempt that
    /// committed.
    ///
    /// `apply` gets a fresh [`StmTxn`] per attempt and returns a future (`|txn| async move
    /// { ... }`). Its error type `E` is any type that an [`Error`] converts into:
    /// [`Error`] itself, or your own error enum with a `From<etcdv3::Error>` case. See the
    /// type's [Behavior](Stm#behavior) for retries and errors.
    pub async fn run<T, E, F, Fut>(&self, mut apply: F) -> std::result::Result<T, E>
    where
        F: FnMut(StmTxn<K>) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: From<Error>,
    {
        if self.max_attempts == Some(0) {
            return Err(Error::invalid("stm: max_attempts must be at least 1").into());
        }
        if self.prefetch.iter().any(Vec::is_empty) {
            return Err(Error::invalid("stm: prefetch keys must not be empty").into());
        }
        let mut prefetched = HashMap::new();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let txn = StmTxn::new(self.kv.clone(), self.isolation, prefetched);
            if !self.prefetch.is_empty() {
                txn.read_many(self.prefetch.clone()).await?;
            }
            let value = apply(txn.clone()).await?;
            let state = txn.finish();
            if let Some(err) = state.failed {
                return Err(err.into());
            }
            let commit = state.commit(self.isolation);
            let resp = self
                .kv
                .txn()
                .when(commit.compares)
                .and_then(commit.writes)
                .or_else(commit.rereads.iter().map(|k| Op::get(k.clone())))
                .await?;
            if resp.succeeded() {
                return Ok(value);
            }
            if self.max_attempts.is_some_and(|max| attempts >= max) {
                return Err(Error::conflict(attempts).into());
            }
            let revision = resp.header().revision();
            prefetched = reads_from(commit.rereads, resp.into_responses(), revision)?;
        }
    }
}

/// The else branch of a failed commit, as reads at `revision` for the next attempt.
fn reads_from(
    keys: Vec<Vec<u8>>,
    responses: Vec<OpResponse>,
    revision: i64,
) -> Result<HashMap<Vec<u8>, Read>> {
    if keys.len() != responses.len() {
        return Err(Error::protocol(format!(
            "stm: the failed commit answered {} reads, {} were asked",
            responses.len(),
            keys.len()
        )));
    }
    keys.into_iter()
        .zip(responses)
        .map(|(key, r)| {
            let get = GetResponse::try_from(r)?;
            Ok((key, Read::new(get, revision)))
        })
        .collect()
}

/// One attempt of an [`Stm`] transaction: read keys, record writes. Handed to the closure
/// of [`Stm::run`]; cheap to clone (clones share the attempt).
///
/// A handle kept after its attempt ended still answers, but nothing it records is committed.
///
/// ```no_run
/// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
/// use etcdv3::Stm;
///
/// // Move 10 from account a to account b, whatever else runs at the same time.
/// let kv = client.kv();
/// let moved = Stm::new(&kv)
///     .run(|txn| async move {
///         let balance = |v: Option<Vec<u8>>| -> i64 {
///             v.and_then(|v| String::from_utf8(v).ok()?.parse().ok()).unwrap_or(0)
///         };
///         let a = balance(txn.get("accounts/a").await?);
///         let b = balance(txn.get("accounts/b").await?);
///         if a < 10 {
///             return Ok(false); // no writes: the commit only checks the two reads
///         }
///         txn.put("accounts/a", (a - 10).to_string())?;
///         txn.put("accounts/b", (b + 10).to_string())?;
///         Ok::<_, etcdv3::Error>(true)
///     })
///     .await?;
/// # let _ = moved;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct StmTxn<K> {
    inner: Arc<Attempt<K>>,
}

impl<K> Clone for StmTxn<K> {
    fn clone(&self) -> Self {
        StmTxn {
            inner: Arc::clone(&self.inner),
        }
    }
}

#[derive(Debug)]
struct Attempt<K> {
    kv: K,
    isolation: Isolation,
    state: Mutex<State>,
}

/// What an attempt read and wrote.
#[derive(Debug, Default)]
struct State {
    /// Keys read in this attempt, as they were read.
    reads: HashMap<Vec<u8>, Read>,
    /// Reads of the previous attempt's failed commit, not yet used by this one.
    prefetched: HashMap<Vec<u8>, Read>,
    /// Buffered writes, in key order.
    writes: BTreeMap<Vec<u8>, Write>,
    /// The revision later reads are made at (the serializable levels, after the first read).
    snapshot: Option<i64>,
    /// The first error an operation returned: the attempt is aborted with it.
    failed: Option<Error>,
}

/// A key as read: its key-value (`None` if absent) and the store revision of the read.
#[derive(Debug, Clone)]
struct Read {
    kv: Option<KeyValue>,
    revision: i64,
}

impl Read {
    fn new(resp: GetResponse, revision: i64) -> Self {
        Read {
            kv: resp.into_kvs().into_iter().next(),
            revision,
        }
    }

    fn mod_revision(&self) -> i64 {
        self.kv.as_ref().map_or(0, KeyValue::mod_revision)
    }
}

#[derive(Debug, Clone)]
enum Write {
    Put(PutOp),
    Delete,
}

/// The commit transaction of an attempt.
#[derive(Debug)]
struct Commit {
    compares: Vec<Compare>,
    writes: Vec<Op>,
    /// Keys the else branch reads again, in order (serializable levels only).
    rereads: Vec<Vec<u8>>,
}

impl State {
    /// The commit transaction for `isolation`.
    fn commit(self, isolation: Isolation) -> Commit {
        let mut read_keys: Vec<(Vec<u8>, Read)> = self.reads.into_iter().collect();
        read_keys.sort_by(|a, b| a.0.cmp(&b.0));
        let mut compares = Vec::new();
        if isolation != Isolation::ReadCommitted {
            compares.extend(
                read_keys
                    .iter()
                    .map(|(k, r)| Compare::mod_revision(k.clone()).eq(r.mod_revision())),
            );
        }
        if isolation == Isolation::SerializableSnapshot
            && let Some(first) = read_keys.iter().map(|(_, r)| r.revision).min()
        {
            compares.extend(
                self.writes
                    .keys()
                    .map(|k| Compare::mod_revision(k.clone()).lt(first + 1)),
            );
        }
        let writes = self
            .writes
            .into_iter()
            .map(|(key, w)| match w {
                Write::Put(put) => put.into(),
                Write::Delete => DeleteOp::new(key).into(),
            })
            .collect();
        let rereads = match isolation.snapshots() {
            true => read_keys.into_iter().map(|(k, _)| k).collect(),
            false => Vec::new(),
        };
        Commit {
            compares,
            writes,
            rereads,
        }
    }

    /// Takes a read of `key` from the previous attempt's failed commit into this attempt;
    /// the first read of an attempt fixes its snapshot revision.
    fn use_prefetched(&mut self, key: &[u8]) {
        if let Some(read) = self.prefetched.remove(key) {
            if self.reads.is_empty() && self.snapshot.is_none() {
                self.snapshot = Some(read.revision);
            }
            self.reads.insert(key.to_vec(), read);
        }
    }

    fn fail<T>(&mut self, err: Error) -> Result<T> {
        if self.failed.is_none() {
            self.failed = Some(err.duplicate());
        }
        Err(err)
    }
}

impl<K> StmTxn<K> {
    fn new(kv: K, isolation: Isolation, prefetched: HashMap<Vec<u8>, Read>) -> Self {
        StmTxn {
            inner: Arc::new(Attempt {
                kv,
                isolation,
                state: Mutex::new(State {
                    prefetched,
                    ..State::default()
                }),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The lock is never held across an await or user code, so it cannot be poisoned by
        // a panic that left the state half-updated.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Ends the attempt: its reads and writes, leaving the handle empty.
    fn finish(&self) -> State {
        mem::take(&mut *self.state())
    }

    /// Records a write of `key`.
    ///
    /// Empty keys fail with [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest),
    /// and abort the attempt.
    fn write(&self, key: Vec<u8>, write: Write) -> Result<()> {
        let mut state = self.state();
        if key.is_empty() {
            return state.fail(Error::invalid("stm: key must not be empty"));
        }
        state.writes.insert(key, write);
        Ok(())
    }

    /// Buffers a put of `value` at `key`, committed with the attempt. A later
    /// [`get`](StmTxn::get) of `key` in this attempt returns `value`.
    ///
    /// Fails (and aborts the attempt) when `key` is empty.
    pub fn put(&self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Result<()> {
        let key = key.into();
        self.write(key.clone(), Write::Put(PutOp::new(key, value)))
    }

    /// Buffers a put with options (a lease: `Op::put(k, v).lease(id)`), committed with the
    /// attempt. `prev_kv` is accepted but its answer is not returned.
    ///
    /// Fails (and aborts the attempt) on what [`Kv::put`] refuses, and on
    /// [`ignore_value`](PutOp::ignore_value), whose value the transaction could not read back.
    pub fn put_op(&self, op: PutOp) -> Result<()> {
        let checked = op.validate().and_then(|()| match op.ignores_value() {
            true => Err(Error::invalid(
                "stm: put with ignore_value is not supported (the value it keeps is unknown)",
            )),
            false => Ok(()),
        });
        if let Err(e) = checked {
            return self.state().fail(e);
        }
        self.write(op.key().to_vec(), Write::Put(op))
    }

    /// Buffers a delete of `key` (one key, not a range), committed with the attempt. A later
    /// [`get`](StmTxn::get) of `key` in this attempt returns `None`.
    ///
    /// Fails (and aborts the attempt) when `key` is empty.
    pub fn delete(&self, key: impl Into<Vec<u8>>) -> Result<()> {
        self.write(key.into(), Write::Delete)
    }
}

impl<K: Kv + Clone> StmTxn<K> {
    /// The value of `key`, `None` if it does not exist: the value this attempt wrote, if it
    /// wrote the key, else the value read (from etcd the first time, from this attempt's
    /// reads later).
    ///
    /// An error (etcd's, or an empty key) also aborts the attempt: [`Stm::run`] returns it
    /// even if the closure goes on.
    pub async fn get(&self, key: impl Into<Vec<u8>>) -> Result<Option<Vec<u8>>> {
        let key = key.into();
        if let Some(w) = self.state().writes.get(&key) {
            return Ok(match w {
                Write::Put(put) => Some(put.value().to_vec()),
                Write::Delete => None,
            });
        }
        Ok(self.read(key).await?.kv.map(|kv| kv.into_key_value().1))
    }

    /// The revision `key` was last modified at as this attempt reads it (0 if it does not
    /// exist), whatever the attempt wrote to it: Go's `STM.Rev`. Reads the key like
    /// [`get`](StmTxn::get).
    pub async fn rev(&self, key: impl Into<Vec<u8>>) -> Result<i64> {
        Ok(self.read(key.into()).await?.mod_revision())
    }

    /// Reads `key` into the attempt's read set (or finds it there).
    async fn read(&self, key: Vec<u8>) -> Result<Read> {
        self.read_many(vec![key.clone()]).await?;
        let read = self.state().reads.get(&key).cloned();
        read.ok_or_else(|| Error::protocol("stm: a read went missing from the read set"))
    }

    /// Reads the keys not yet in the read set, all in one request.
    async fn read_many(&self, keys: Vec<Vec<u8>>) -> Result<()> {
        let (missing, snapshot) = {
            let mut state = self.state();
            if keys.iter().any(Vec::is_empty) {
                return state.fail(Error::invalid("stm: key must not be empty"));
            }
            let mut missing: Vec<Vec<u8>> = Vec::new();
            for key in keys {
                state.use_prefetched(&key);
                if !state.reads.contains_key(&key) && !missing.contains(&key) {
                    missing.push(key);
                }
            }
            (missing, state.snapshot)
        };
        if missing.is_empty() {
            return Ok(());
        }
        let result = match self.fetch(&missing, snapshot, true).await {
            Err(e) if e.is_future_revision() && snapshot.is_some() => {
                self.fetch(&missing, snapshot, false).await
            }
            other => other,
        };
        let mut state = self.state();
        let (responses, revision) = match result {
            Ok(r) => r,
            Err(e) => return state.fail(e),
        };
        if self.inner.isolation.snapshots() && state.snapshot.is_none() {
            state.snapshot = Some(revision);
        }
        for (key, resp) in missing.into_iter().zip(responses) {
            state
                .reads
                .entry(key)
                .or_insert_with(|| Read::new(resp, revision));
        }
        Ok(())
    }

    /// Reads `keys` (one get, or one read-only transaction for several): at the `snapshot`
    /// revision if there is one, serializable if `serializable` and the level allows it.
    async fn fetch(
        &self,
        keys: &[Vec<u8>],
        snapshot: Option<i64>,
        serializable: bool,
    ) -> Result<(Vec<GetResponse>, i64)> {
        let serializable = match self.inner.isolation.snapshots() {
            true => serializable && snapshot.is_some(),
            false => true,
        };
        let op = |key: &Vec<u8>| {
            let mut get = GetOp::new(key.clone()).revision(snapshot.unwrap_or(0));
            if serializable {
                get = get.serializable();
            }
            get
        };
        let kv = &self.inner.kv;
        if let [key] = keys {
            let resp = kv.execute(op(key).into(), Default::default()).await?;
            let resp = GetResponse::try_from(resp)?;
            let revision = resp.header().revision();
            return Ok((vec![resp], revision));
        }
        let resp = kv.txn().and_then(keys.iter().map(op)).await?;
        let revision = resp.header().revision();
        let gets = resp
            .into_responses()
            .into_iter()
            .map(GetResponse::try_from)
            .collect::<Result<Vec<_>>>()?;
        if gets.len() != keys.len() {
            return Err(Error::protocol(format!(
                "stm: etcd answered {} of {} reads",
                gets.len(),
                keys.len()
            )));
        }
        Ok((gets, revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcdv3_proto::{etcdserverpb as pb, mvccpb};

    fn read(key: &str, mod_revision: Option<i64>, revision: i64) -> (Vec<u8>, Read) {
        let kv = mod_revision.map(|m| {
            KeyValue::from(mvccpb::KeyValue {
                key: key.as_bytes().to_vec(),
                mod_revision: m,
                create_revision: 1,
                version: 1,
                value: b"v".to_vec(),
                lease: 0,
            })
        });
        (key.as_bytes().to_vec(), Read { kv, revision })
    }

    fn state(reads: &[(&str, Option<i64>, i64)], writes: &[&str]) -> State {
        State {
            reads: reads.iter().map(|&(k, m, r)| read(k, m, r)).collect(),
            writes: writes
                .iter()
                .map(|k| (k.as_bytes().to_vec(), Write::Put(PutOp::new(*k, "x"))))
                .collect(),
            ..State::default()
        }
    }

    fn keys(ops: &[Op]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                Op::Put(p) => String::from_utf8_lossy(p.key()).into_owned(),
                Op::Delete(d) => format!("del {:?}", d.keys()),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn serializable_snapshot_checks_reads_and_writes_after_the_first_read() {
        let s = state(&[("b", Some(7), 12), ("a", None, 10)], &["c", "a"]);
        let c = s.commit(Isolation::SerializableSnapshot);
        assert_eq!(
            c.compares,
            [
                Compare::mod_revision("a").eq(0),
                Compare::mod_revision("b").eq(7),
                Compare::mod_revision("a").lt(11),
                Compare::mod_revision("c").lt(11),
            ]
        );
        assert_eq!(keys(&c.writes), ["a", "c"]);
        assert_eq!(c.rereads, [b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn serializable_checks_reads_only_and_rereads_them() {
        let c = state(&[("a", Some(3), 9)], &["z"]).commit(Isolation::Serializable);
        assert_eq!(c.compares, [Compare::mod_revision("a").eq(3)]);
        assert_eq!(c.rereads, [b"a".to_vec()]);
    }

    #[test]
    fn repeatable_reads_checks_reads_without_rereads() {
        let c = state(&[("a", Some(3), 9)], &["z"]).commit(Isolation::RepeatableReads);
        assert_eq!(c.compares, [Compare::mod_revision("a").eq(3)]);
        assert!(c.rereads.is_empty());
    }

    #[test]
    fn read_committed_checks_nothing() {
        let c = state(&[("a", Some(3), 9)], &["a"]).commit(Isolation::ReadCommitted);
        assert!(c.compares.is_empty() && c.rereads.is_empty());
        assert_eq!(keys(&c.writes), ["a"]);
    }

    #[test]
    fn writes_without_reads_have_no_snapshot_check() {
        let c = state(&[], &["a"]).commit(Isolation::SerializableSnapshot);
        assert!(c.compares.is_empty());
        assert_eq!(keys(&c.writes), ["a"]);
    }

    #[test]
    fn deletes_become_single_key_deletes() {
        let mut s = state(&[], &[]);
        s.writes.insert(b"k".to_vec(), Write::Delete);
        let c = s.commit(Isolation::SerializableSnapshot);
        let [Op::Delete(d)] = &c.writes[..] else {
            panic!("one delete expected: {:?}", c.writes)
        };
        assert_eq!(d.keys(), &crate::KeyRange::key("k"));
    }

    #[test]
    fn the_first_prefetched_read_fixes_the_snapshot() {
        let mut s = State {
            prefetched: [read("a", Some(4), 20), read("b", None, 20)]
                .into_iter()
                .collect(),
            ..State::default()
        };
        s.use_prefetched(b"zz");
        assert_eq!(s.snapshot, None);
        s.use_prefetched(b"a");
        assert_eq!(s.snapshot, Some(20));
        assert!(s.reads.contains_key(&b"a"[..]) && !s.prefetched.contains_key(&b"a"[..]));
    }

    #[test]
    fn failed_commit_answers_become_reads_at_its_revision() {
        let get = |m: i64| {
            OpResponse::Get(GetResponse::from(pb::RangeResponse {
                header: Some(pb::ResponseHeader::default()),
                kvs: vec![mvccpb::KeyValue {
                    key: b"a".to_vec(),
                    mod_revision: m,
                    ..Default::default()
                }],
                more: false,
                count: 1,
            }))
        };
        let reads = reads_from(vec![b"a".to_vec()], vec![get(5)], 30).unwrap();
        assert_eq!(reads[&b"a"[..]].revision, 30);
        assert_eq!(reads[&b"a"[..]].mod_revision(), 5);
        let err = reads_from(vec![b"a".to_vec(), b"b".to_vec()], vec![get(5)], 30).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Protocol);
    }

    /// A `Kv` that counts the requests it gets and refuses them all.
    #[derive(Debug, Clone, Default)]
    struct Refusing(Arc<std::sync::atomic::AtomicUsize>);

    impl Kv for Refusing {
        fn execute(
            &self,
            _: Op,
            _: crate::CallOptions,
        ) -> futures_util::future::BoxFuture<'static, Result<OpResponse>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async { Err(Error::closed()) })
        }

        fn execute_compact(
            &self,
            _: crate::CompactOp,
            _: crate::CallOptions,
        ) -> futures_util::future::BoxFuture<'static, Result<crate::CompactResponse>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async { Err(Error::closed()) })
        }
    }

    #[tokio::test]
    async fn bad_input_fails_before_anything_is_sent() {
        let kv = Refusing::default();
        let err = Stm::new(&kv)
            .max_attempts(0)
            .run(|_txn| async { Ok::<_, Error>(()) })
            .await
            .unwrap_err();
        assert!(err.is_invalid_request());
        let err = Stm::new(&kv)
            .prefetch([""])
            .run(|_txn| async { Ok::<_, Error>(()) })
            .await
            .unwrap_err();
        assert!(err.is_invalid_request());
        let err = Stm::new(&kv)
            .run(|txn| async move {
                // The closure ignores the error: the run still fails with it.
                let _ = txn.put("", "v");
                Ok::<_, Error>(())
            })
            .await
            .unwrap_err();
        assert!(err.is_invalid_request());
        let err = Stm::new(&kv)
            .run(|txn| async move { txn.get("").await.map(drop) })
            .await
            .unwrap_err();
        assert!(err.is_invalid_request());
        let err = Stm::new(&kv)
            .run(|txn| async move { txn.put_op(PutOp::new("k", "").ignore_value()) })
            .await
            .unwrap_err();
        assert!(err.is_invalid_request());
        assert_eq!(kv.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_rpc_error_aborts_even_when_the_closure_ignores_it() {
        let kv = Refusing::default();
        let err = Stm::new(&kv)
            .run(|txn| async move {
                let _ = txn.get("k").await;
                txn.put("k", "v")
            })
            .await
            .unwrap_err();
        assert!(err.is_closed());
        // The read only: no commit was sent.
        assert_eq!(kv.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
