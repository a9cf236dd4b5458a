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
                if let Some(expired) = expired_since(&chain[0], std::time::SystemTime::now()) {
                    return Err(Error::config(format!(
                        "the client certificate expired at {expired} (its notAfter); renew it"
                    )));
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

/// When `cert` (DER) has expired by `now`: its notAfter as `YYYY-MM-DD HH:MM:SS UTC`.
/// `None` when it is still valid or cannot be read (the handshake then decides).
fn expired_since(cert: &[u8], now: std::time::SystemTime) -> Option<String> {
    let (y, mo, d, h, mi, sec) = der::not_after(cert)?;
    let days = der::days_from_civil(y, mo, d);
    let at = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(sec);
    let now = i64::try_from(now.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs()).ok()?;
    (now > at).then(|| format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{sec:02} UTC"))
}

/// Just enough DER to find a certificate's notAfter.
mod der {
    /// One tag-length-value: (tag, contents, rest).
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |a, &b| (a << 8) | usize::from(b));
            (len, &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }

    /// The notAfter of a certificate as (year, month, day, hour, minute, second).
    pub(super) fn not_after(cert: &[u8]) -> Option<(i64, u32, u32, u32, u32, u32)> {
        let (_, certificate, _) = tlv(cert)?;
        let (_, tbs, _) = tlv(certificate)?;
        let mut rest = tbs;
        let (tag, _, after) = tlv(rest)?;
        if tag == 0xa0 {
            rest = after; // [0] version
        }
        for _ in 0..3 {
            rest = tlv(rest)?.2; // serial number, signature algorithm, issuer
        }
        let (_, validity, _) = tlv(rest)?;
        let (_, _, past_not_before) = tlv(validity)?;
        let (tag, not_after, _) = tlv(past_not_before)?;
        let text = std::str::from_utf8(not_after).ok()?.strip_suffix('Z')?;
        let (year, rest) = match tag {
            // UTCTime: two-digit year, 1950–2049.
            0x17 => {
                let yy: i64 = text.get(..2)?.parse().ok()?;
                (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
            }
            // GeneralizedTime.
            0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
            _ => return None,
        };
        let field = |i: usize| -> Option<u32> { rest.get(i..i + 2)?.parse().ok() };
        Some((year, field(0)?, field(2)?, field(4)?, field(6)?, field(8)?))
    }

    /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
    pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(m);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// DER: `tag`, a short length, `content`.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag, u8::try_from(content.len()).unwrap()];
        v.extend_from_slice(content);
        v
    }

    /// A certificate skeleton with the given validity times (tag, text).
    fn cert(not_before: (u8, &str), not_after: (u8, &str)) -> Vec<u8> {
        let validity = [
            tlv(not_before.0, not_before.1.as_bytes()),
            tlv(not_after.0, not_after.1.as_bytes()),
        ]
        .concat();
        let tbs = [
            tlv(0xa0, &tlv(0x02, &[2])),
            tlv(0x02, &[1]),
            tlv(0x30, &[]),
            tlv(0x30, &[]),
            tlv(0x30, &validity),
        ]
        .concat();
        tlv(0x30, &tlv(0x30, &tbs))
    }

    #[test]
    fn civil_days() {
        assert_eq!(der::days_from_civil(1970, 1, 1), 0);
        assert_eq!(der::days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(der::days_from_civil(2020, 12, 31), 18_627);
    }

    #[test]
    fn an_expired_certificate_is_dated() {
        let utc = cert((0x17, "200101000000Z"), (0x17, "201231235959Z"));
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            expired_since(&utc, now).as_deref(),
            Some("2020-12-31 23:59:59 UTC")
        );
        let generalized = cert((0x18, "20200101000000Z"), (0x18, "20991231000000Z"));
        assert_eq!(expired_since(&generalized, now), None, "still valid");
        let before = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        assert_eq!(expired_since(&utc, before), None, "not yet expired then");
        assert_eq!(
            expired_since(b"junk", now),
            None,
            "unreadable: left to the handshake"
        );
    }
}
