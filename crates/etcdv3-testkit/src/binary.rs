//! Locating the etcd binary and asking it for its version.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::error::{Error, ErrorKind};

/// Environment variable naming the etcd binary to use instead of the vendored one.
pub const ETCD_BIN_ENV: &str = "ETCDV3_ETCD_BIN";

/// The etcd binary members run, and the version it reported.
#[derive(Debug, Clone)]
pub(crate) struct EtcdBinary {
    path: PathBuf,
    version: String,
}

impl EtcdBinary {
    /// Finds the binary (`explicit`, else `$ETCDV3_ETCD_BIN`, else the vendored one) and runs
    /// `etcd --version`. A relative path with a directory part is made absolute, since
    /// members run in the cluster's temp dir; a bare name is left to the `PATH` search.
    pub(crate) async fn locate(explicit: Option<PathBuf>) -> Result<EtcdBinary, Error> {
        let path = resolve(explicit)?;
        let path = if path.components().count() > 1 && path.is_relative() {
            std::path::absolute(&path).unwrap_or(path)
        } else {
            path
        };
        let version = version(&path).await?;
        Ok(EtcdBinary { path, version })
    }

    /// The binary's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The version, e.g. `"3.6.15"`.
    pub(crate) fn version(&self) -> &str {
        &self.version
    }

    /// True for etcd 3.3 and 3.4: they need `--logger=zap` for structured logs and cannot
    /// serve clients on a unix socket.
    pub(crate) fn is_pre_3_5(&self) -> bool {
        self.version.starts_with("3.4.") || self.version.starts_with("3.3.")
    }
}

fn resolve(explicit: Option<PathBuf>) -> Result<PathBuf, Error> {
    if let Some(bin) = explicit {
        return Ok(bin);
    }
    if let Some(bin) = std::env::var_os(ETCD_BIN_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    etcd_bin_vendored::etcd_bin_path()
        .map(Path::to_path_buf)
        .map_err(|e| {
            Error::new(
                ErrorKind::Binary,
                format!("no vendored etcd for this platform (set {ETCD_BIN_ENV})"),
            )
            .source(e)
        })
}

async fn version(bin: &Path) -> Result<String, Error> {
    let output = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Binary,
                format!(
                    "running `{} --version` failed (set {ETCD_BIN_ENV} or EtcdClusterBuilder::etcd_bin)",
                    bin.display()
                ),
            )
            .source(e)
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("etcd Version:"))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Binary,
                format!(
                    "`{} --version` printed no \"etcd Version:\" line ({}): {stdout}",
                    bin.display(),
                    output.status
                ),
            )
        })
}
