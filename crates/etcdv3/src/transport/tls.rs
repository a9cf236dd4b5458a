//! TLS with rustls (ring): trust roots, client certificates, server-name checks, ALPN `h2`.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;

use super::status::connect_failed;
use crate::error::{Error, ErrorKind, Result};

/// TLS settings with every file read and parsed: one per client, shared by its endpoints.
#[derive(Debug, Clone)]
pub(crate) struct LoadedTls {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<String>,
    identity: bool,
}

/// What [`crate::TlsConfig`] hands over after reading its files.
pub(crate) struct TlsMaterial {
    pub(crate) ca: Option<Vec<u8>>,
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
    pub(crate) server_name: Option<String>,
    pub(crate) skip_verify: bool,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl LoadedTls {
    pub(crate) fn build(m: TlsMaterial) -> Result<LoadedTls> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::config(format!("TLS set-up failed: {e}")))?;
        let builder = if m.skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
        } else {
            let mut roots = rustls::RootCertStore::empty();
            if let Some(ca) = &m.ca {
                let mut found = 0;
                for cert in CertificateDer::pem_slice_iter(ca) {
                    let cert = cert.map_err(|e| {
                        Error::config(format!("CA certificate is not valid PEM: {e}"))
                    })?;
                    roots
                        .add(cert)
                        .map_err(|e| Error::config(format!("CA certificate rejected: {e}")))?;
                    found += 1;
                }
                if found == 0 {
                    return Err(Error::config("CA certificate file holds no certificate"));
                }
            } else {
                // No CA given: trust the system's store, as Go does.
                roots = system_roots();
            }
            builder.with_root_certificates(roots)
        };
        let identity = m.identity.is_some();
        let mut config = match m.identity {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(&cert)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| {
                        Error::config(format!("client certificate is not valid PEM: {e}"))
                    })?;
                if chain.is_empty() {
                    return Err(Error::config(
                        "client certificate file holds no certificate",
                    ));
                }
                let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| {
                    Error::config(format!("client key is not a valid PEM key: {e}"))
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| Error::config(format!("client certificate rejected: {e}")))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(LoadedTls {
            config: Arc::new(config),
            server_name: m.server_name,
            identity,
        })
    }

    /// TLS for an `https://` endpoint when the client has no TLS configuration: the system's
    /// trusted CAs, no client certificate. Built once per process.
    pub(crate) fn default_for_endpoint() -> Result<LoadedTls> {
        static DEFAULT: std::sync::OnceLock<LoadedTls> = std::sync::OnceLock::new();
        if let Some(d) = DEFAULT.get() {
            return Ok(d.clone());
        }
        let built = Self::build(TlsMaterial {
            ca: None,
            identity: None,
            server_name: None,
            skip_verify: false,
        })?;
        Ok(DEFAULT.get_or_init(|| built).clone())
    }

    pub(crate) fn has_identity(&self) -> bool {
        self.identity
    }

    /// A connector that checks the certificate for `endpoint_host`, unless a server name was
    /// configured.
    pub(crate) fn connector(&self, endpoint_host: &str) -> Result<TlsConnector> {
        let name = self.server_name.as_deref().unwrap_or(endpoint_host);
        let name = ServerName::try_from(name.to_owned())
            .map_err(|e| Error::config(format!("invalid TLS server name {name:?}: {e}")))?;
        Ok(TlsConnector {
            inner: tokio_rustls::TlsConnector::from(self.config.clone()),
            name,
        })
    }
}

/// Runs TLS handshakes for one endpoint.
#[derive(Clone)]
pub(crate) struct TlsConnector {
    inner: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("name", &self.name)
            .finish()
    }
}

impl TlsConnector {
    pub(crate) async fn connect<S>(&self, io: S) -> Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.inner
            .connect(self.name.clone(), io)
            .await
            .map_err(|e| {
                // tokio-rustls wraps the rustls error in an io::Error: keep the rustls error
                // itself as the cause when there is one.
                match e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
                    true => match e.into_inner().map(|b| b.downcast::<rustls::Error>()) {
                        Some(Ok(tls)) => connect_failed("TLS handshake failed", *tls),
                        _ => Error::new(ErrorKind::Connect, "TLS handshake failed"),
                    },
                    // Closed mid-handshake: a plaintext port (etcd closes what it cannot
                    // read) or a refused client certificate.
                    false if e.kind() == std::io::ErrorKind::UnexpectedEof => connect_failed(
                        "TLS handshake failed: the server closed the connection (it may not \
                         speak TLS on this port: use http:// for a plaintext one)",
                        e,
                    ),
                    false => connect_failed("TLS handshake failed", e),
                }
            })
    }
}

/// The system's trusted CA certificates (those that parse); an empty store when there are none.
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    roots
}

/// Advice for a TLS failure, from the rustls error's variant.
pub(crate) fn hint(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use rustls::{AlertDescription as Alert, CertificateError as Cert, Error as E, InvalidMessage};
    match e.downcast_ref::<rustls::Error>()? {
        E::InvalidCertificate(Cert::UnknownIssuer) => Some(
            "the server certificate is not signed by a trusted CA (set the CA certificate with \
             TlsConfig::ca_cert_file; without one, only the system's trusted CAs are accepted)",
        ),
        E::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => {
            Some("the server certificate does not name this host")
        }
        E::InvalidCertificate(Cert::Expired | Cert::ExpiredContext { .. }) => {
            Some("the server certificate has expired")
        }
        E::AlertReceived(Alert::CertificateRequired | Alert::BadCertificate) => {
            Some("the server requires a client certificate it accepts")
        }
        E::AlertReceived(Alert::UnknownCA) => {
            Some("the server does not trust the client certificate's CA")
        }
        E::InvalidMessage(InvalidMessage::InvalidContentType | InvalidMessage::MessageTooLarge) => {
            Some("the server does not speak TLS on this port (use http:// or drop the TLS config)")
        }
        _ => None,
    }
}

/// Accepts any server certificate (`insecure_skip_verify`); signatures are still checked so
/// the handshake itself is sound.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
