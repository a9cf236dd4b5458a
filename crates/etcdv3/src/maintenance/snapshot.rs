//! Snapshots: the checked stream of a member's database, and saving it to a file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use etcdv3_proto::etcdserverpb as pb;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::op::SnapshotProgress;
use super::types::SnapshotResponse;
use crate::error::{Error, Result};
use crate::kv::ResponseHeader;
use crate::transport::stream::GrpcStream;

/// The length of the checksum etcd appends to a snapshot: a sha256.
const CHECKSUM_LEN: usize = 32;

/// A snapshot as it streams from one member: [`MaintenanceClient::snapshot`].
///
/// Yields the messages etcd sends ([`message`](Self::message), or as a
/// [`Stream`](futures_util::Stream)); the concatenation of their [`blob`]s is the member's
/// database followed by its 32-byte sha256. The stream checks that checksum as the bytes go
/// by: it ends with `None` only when the checksum matched, and with an
/// [`ErrorKind::Protocol`](crate::ErrorKind::Protocol) error when it did not (or when the
/// stream was too short to hold one).
///
/// Dropping it cancels the transfer. A deadline set on the call (`.timeout(d)`) bounds the
/// whole transfer, and reading after it passed fails with
/// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout); without one the transfer takes as long
/// as it takes.
///
/// [`MaintenanceClient::snapshot`]: crate::MaintenanceClient::snapshot
/// [`blob`]: SnapshotResponse::blob
pub struct SnapshotStream {
    header: ResponseHeader,
    version: Option<String>,
    total: u64,
    endpoint: String,
    inner: BoxStream<'static, Result<SnapshotResponse>>,
}

impl std::fmt::Debug for SnapshotStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStream")
            .field("endpoint", &self.endpoint)
            .field("version", &self.version)
            .field("total_bytes", &self.total)
            .finish_non_exhaustive()
    }
}

type Raw = GrpcStream<pb::SnapshotRequest, pb::SnapshotResponse>;

/// What the stream reads from: the gRPC stream, the first message (read before the stream
/// was handed out), the running checksum and the deadline.
struct Reader {
    grpc: Raw,
    first: Option<pb::SnapshotResponse>,
    checksum: Checksum,
    deadline: Option<(Instant, Duration)>,
    done: bool,
}

impl Reader {
    async fn next(&mut self) -> Option<Result<SnapshotResponse>> {
        if self.done {
            return None;
        }
        if let Some((at, after)) = self.deadline
            && Instant::now() >= at
        {
            self.done = true;
            let endpoint = self.grpc.endpoint().clone();
            return Some(Err(Error::timeout(after).sent().with_endpoint(&*endpoint)));
        }
        let result = match self.first.take() {
            Some(first) => Ok(Some(first)),
            None => self.receive().await,
        };
        match result {
            Ok(Some(msg)) => {
                self.checksum.update(&msg.blob);
                Some(Ok(msg.into()))
            }
            Ok(None) => {
                self.done = true;
                let endpoint = self.grpc.endpoint().clone();
                std::mem::take(&mut self.checksum)
                    .verify()
                    .err()
                    .map(|e| Err(e.with_endpoint(&*endpoint)))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    async fn receive(&mut self) -> Result<Option<pb::SnapshotResponse>> {
        match self.deadline {
            None => self.grpc.message().await,
            Some((at, after)) => match tokio::time::timeout_at(at, self.grpc.message()).await {
                Ok(r) => r,
                Err(_) => Err(Error::timeout(after)
                    .sent()
                    .with_endpoint(&**self.grpc.endpoint())),
            },
        }
    }
}

impl SnapshotStream {
    /// Wraps an open snapshot stream: reads its first message (bounded by `deadline`), which
    /// says how large the database is and which version made it.
    pub(crate) async fn start(grpc: Raw, deadline: Option<(Instant, Duration)>) -> Result<Self> {
        let endpoint = grpc.endpoint().to_string();
        let mut reader = Reader {
            grpc,
            first: None,
            checksum: Checksum::default(),
            deadline,
            done: false,
        };
        let first = reader.receive().await?.ok_or_else(|| {
            Error::protocol("the snapshot stream ended before its first message")
                .with_endpoint(&*endpoint)
        })?;
        let total = first.remaining_bytes + first.blob.len() as u64 + CHECKSUM_LEN as u64;
        let header = first.header.map(ResponseHeader::from).unwrap_or_default();
        let version = (!first.version.is_empty()).then(|| first.version.clone());
        reader.first = Some(first);
        let inner = futures_util::stream::unfold(reader, |mut r| async move {
            let item = r.next().await?;
            Some((item, r))
        })
        .fuse()
        .boxed();
        Ok(SnapshotStream {
            header,
            version,
            total,
            endpoint,
            inner,
        })
    }

    /// The header of etcd's first message (etcd leaves it empty in snapshot messages).
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The storage version of the member that made the snapshot, e.g. `"3.6.0"`: the etcd
    /// version to restore it with. Go's `SnapshotResponse.Version`. `None` from members
    /// older than 3.6, and from a 3.6 member that has not yet taken a raft snapshot (every
    /// `--snapshot-count` entries, 10,000 by default), before which its database does not
    /// record the version.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// How many bytes the whole stream carries: the database and its 32-byte checksum, as
    /// etcd announced in its first message.
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// The endpoint the snapshot comes from.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The next message; `None` once the stream ended and its checksum matched. Cancel-safe:
    /// nothing is lost when the future is dropped before it completes.
    pub async fn message(&mut self) -> Result<Option<SnapshotResponse>> {
        self.inner.next().await.transpose()
    }
}

impl Stream for SnapshotStream {
    type Item = Result<SnapshotResponse>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().inner.poll_next_unpin(cx)
    }
}

/// The sha256 of a snapshot's bytes, less the last 32, which are held back as they come:
/// whatever the message boundaries, they are the checksum once the stream ends.
#[derive(Default)]
pub(crate) struct Checksum {
    hasher: Sha256,
    tail: Vec<u8>,
    total: u64,
}

impl Checksum {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if bytes.len() >= CHECKSUM_LEN {
            self.hasher.update(&self.tail);
            let (body, tail) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
            self.hasher.update(body);
            self.tail.clear();
            self.tail.extend_from_slice(tail);
        } else {
            self.tail.extend_from_slice(bytes);
            if self.tail.len() > CHECKSUM_LEN {
                let extra = self.tail.len() - CHECKSUM_LEN;
                self.hasher.update(&self.tail[..extra]);
                self.tail.drain(..extra);
            }
        }
    }

    /// Checks what etcd sends: a database (whole 512-byte sectors; bbolt pages are larger)
    /// followed by the sha256 of it.
    pub(crate) fn verify(self) -> Result<()> {
        if self.total % 512 != CHECKSUM_LEN as u64 {
            return Err(Error::protocol(format!(
                "the snapshot has {} bytes, not a database followed by a 32-byte sha256 \
                 checksum (size % 512 == 32): it is incomplete or not a snapshot",
                self.total
            )));
        }
        if self.hasher.finalize().as_slice() != self.tail.as_slice() {
            return Err(Error::protocol(format!(
                "the snapshot's sha256 checksum does not match its {} bytes of data: it was \
                 corrupted on the way",
                self.total - CHECKSUM_LEN as u64
            )));
        }
        Ok(())
    }
}

/// What [`MaintenanceClient::snapshot_save`](crate::MaintenanceClient::snapshot_save) saved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotSaved {
    path: PathBuf,
    size: u64,
    version: Option<String>,
}

impl SnapshotSaved {
    /// Where the snapshot is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes: the database and its 32-byte checksum.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The storage version of the member that made the snapshot, e.g. `"3.6.0"`: the etcd
    /// version to restore it with; what Go's `SaveWithVersion` returns. `None` when etcd did
    /// not say: see [`SnapshotStream::version`].
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
}

/// `path` with `.part` appended, where the snapshot is written until it is complete.
pub(crate) fn part_path(path: &Path) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(".part");
    PathBuf::from(s)
}

/// Removes the partial file when the save ends without renaming it (an error, or the save's
/// future dropped).
struct PartFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Creates `path.part` for writing, with mode 0600, before anything is asked of etcd: a
/// destination that cannot be written fails here.
pub(crate) async fn create_part(path: &Path) -> Result<(tokio::fs::File, PathBuf)> {
    if tokio::fs::metadata(path).await.is_ok_and(|m| m.is_dir()) {
        return Err(Error::io(
            format!("cannot save a snapshot to {}", path.display()),
            std::io::Error::new(std::io::ErrorKind::IsADirectory, "it is a directory"),
        ));
    }
    let part = part_path(path);
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let file = options
        .open(&part)
        .await
        .map_err(|e| Error::io(format!("cannot create {}", part.display()), e))?;
    // A `.part` left from an earlier run keeps its mode through `truncate`: set it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = file
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .await
        {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(Error::io(
                format!("cannot set the mode of {}", part.display()),
                e,
            ));
        }
    }
    Ok((file, part))
}

/// Writes `stream` into `file` (at `part`), then syncs it and renames it to `path`. The
/// partial file is gone when this fails or is dropped.
pub(crate) async fn save(
    mut stream: SnapshotStream,
    mut file: tokio::fs::File,
    part: PathBuf,
    path: PathBuf,
    progress: Option<&(dyn Fn(SnapshotProgress) + Send + Sync)>,
) -> Result<SnapshotSaved> {
    let mut guard = PartFile {
        path: part,
        keep: false,
    };
    let total = Some(stream.total_bytes());
    let report = |written| {
        if let Some(f) = progress {
            f(SnapshotProgress::new(written, total));
        }
    };
    let write_err = |e| Error::io(format!("cannot write {}", guard.path.display()), e);
    report(0);
    let mut written = 0u64;
    while let Some(msg) = stream.message().await? {
        file.write_all(msg.blob()).await.map_err(write_err)?;
        written += msg.blob().len() as u64;
        report(written);
    }
    file.flush().await.map_err(write_err)?;
    file.sync_all().await.map_err(write_err)?;
    drop(file);
    tokio::fs::rename(&guard.path, &path).await.map_err(|e| {
        Error::io(
            format!(
                "cannot rename {} to {}",
                guard.path.display(),
                path.display()
            ),
            e,
        )
    })?;
    guard.keep = true;
    sync_parent(&path).await;
    Ok(SnapshotSaved {
        path,
        size: written,
        version: stream.version,
    })
}

/// Makes the rename durable: syncs the directory that holds `path` (best effort; not every
/// platform can open a directory).
async fn sync_parent(path: &Path) {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if let Ok(d) = tokio::fs::File::open(&dir).await {
            let _ = d.sync_all().await;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot_bytes(len: usize) -> Vec<u8> {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let sum = Sha256::digest(&data);
        [data, sum.to_vec()].concat()
    }

    fn check(bytes: &[u8], chunk: usize) -> Result<()> {
        let mut c = Checksum::default();
        for piece in bytes.chunks(chunk) {
            c.update(piece);
        }
        c.verify()
    }

    #[test]
    fn the_checksum_is_found_whatever_the_message_boundaries() {
        let bytes = snapshot_bytes(4096);
        for chunk in [1, 5, 31, 32, 33, 64, 500, 4096, 4128, 10_000] {
            check(&bytes, chunk).unwrap_or_else(|e| panic!("chunks of {chunk}: {e}"));
        }
        // As etcd sends it: the data, then the checksum alone.
        let mut c = Checksum::default();
        c.update(&bytes[..4096]);
        c.update(&bytes[4096..]);
        c.verify().unwrap();
    }

    #[test]
    fn a_corrupt_or_short_snapshot_is_refused() {
        let mut bytes = snapshot_bytes(4096);
        bytes[100] ^= 1;
        let err = check(&bytes, 1000).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Protocol);
        assert!(err.to_string().contains("does not match"), "{err}");

        let bytes = snapshot_bytes(4096);
        let err = check(&bytes[..bytes.len() - 1], 1000).unwrap_err();
        assert!(err.to_string().contains("size % 512 == 32"), "{err}");
        assert!(check(&[], 1).is_err());
        assert!(
            check(&bytes[..32], 1).is_err(),
            "a checksum of nothing is no snapshot"
        );
    }

    #[test]
    fn the_part_file_sits_beside_the_destination() {
        assert_eq!(part_path(Path::new("/a/b.db")), Path::new("/a/b.db.part"));
        assert_eq!(part_path(Path::new("snap")), Path::new("snap.part"));
    }
}
