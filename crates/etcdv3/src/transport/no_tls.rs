//! Stand-ins used when the crate is built without the `tls` feature: any TLS use is a
//! configuration error.

use crate::error::{Error, Result};

fn disabled() -> Error {
    Error::config("TLS is needed, but etcdv3 was built without the `tls` feature")
}

#[derive(Debug, Clone)]
pub(crate) struct LoadedTls;

/// The same fields as with TLS, so that configuration code compiles either way; unused here.
#[allow(dead_code)]
pub(crate) struct TlsMaterial {
    pub(crate) ca: Option<Vec<u8>>,
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
    pub(crate) server_name: Option<String>,
    pub(crate) skip_verify: bool,
}

impl LoadedTls {
    pub(crate) fn build(_m: TlsMaterial) -> Result<LoadedTls> {
        Err(disabled())
    }

    pub(crate) fn default_for_endpoint() -> Result<LoadedTls> {
        Err(disabled())
    }

    pub(crate) fn has_identity(&self) -> bool {
        false
    }

    pub(crate) fn connector(&self, _endpoint_host: &str) -> Result<TlsConnector> {
        Err(disabled())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TlsConnector;

impl TlsConnector {
    pub(crate) async fn connect<S>(&self, _io: S) -> Result<S> {
        Err(disabled())
    }
}

/// No TLS, no TLS advice.
pub(crate) fn hint(_e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    None
}
