//! Test certificates, generated in pure Rust with `rcgen`.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::error::{Error, ErrorKind};

/// Whether (and how) the cluster serves TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plain `http://` client and peer URLs (the default).
    #[default]
    None,
    /// `https://` client URLs with a server certificate; clients need only the CA.
    /// Peers always use mutual TLS with the server certificate.
    Server,
    /// `https://` client URLs and `--client-cert-auth`: clients must present a certificate
    /// signed by the test CA. With auth enabled, the certificate's CN names the user.
    MutualTls,
}

/// The certificate and key files of a TLS cluster, all PEM, in the cluster's temp dir.
///
/// | file | what |
/// |---|---|
/// | `ca_cert` | the test CA (CN=etcd-test-ca) every other cert except the rogue one chains to |
/// | `server_cert`, `server_key` | SANs IP 127.0.0.1, IP ::1, DNS localhost; serverAuth + clientAuth, also used for peer TLS |
/// | `client_cert`, `client_key` | client cert CN=root |
/// | `alice_cert`, `alice_key` | client cert CN=alice |
/// | `rogue_cert`, `rogue_key` | client cert CN=root signed by `other_ca_cert`, which the servers do not trust |
/// | `expired_cert`, `expired_key` | client cert CN=root signed by the test CA, valid only in 2020 |
/// | `other_ca_cert` | the untrusted CA (CN=etcd-test-other-ca) |
///
/// Keys are PKCS#8 ECDSA P-256. The `*_pem` methods return the file contents.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsFiles {
    /// The CA certificate the servers trust and that signed the server and client certs.
    pub ca_cert: PathBuf,
    /// The server (and peer) certificate.
    pub server_cert: PathBuf,
    /// The server (and peer) private key.
    pub server_key: PathBuf,
    /// Client certificate with CN=root.
    pub client_cert: PathBuf,
    /// Private key of the CN=root client certificate.
    pub client_key: PathBuf,
    /// Client certificate with CN=alice.
    pub alice_cert: PathBuf,
    /// Private key of the CN=alice client certificate.
    pub alice_key: PathBuf,
    /// Client certificate with CN=root signed by the untrusted `other_ca_cert`.
    pub rogue_cert: PathBuf,
    /// Private key of the rogue client certificate.
    pub rogue_key: PathBuf,
    /// The CA that signed the rogue certificate; the servers do not trust it.
    pub other_ca_cert: PathBuf,
    /// Client certificate with CN=root, signed by the test CA, expired (valid only in 2020).
    pub expired_cert: PathBuf,
    /// Private key of the expired client certificate.
    pub expired_key: PathBuf,
    pem: Pems,
}

#[derive(Debug, Clone)]
struct Pems {
    ca_cert: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
    alice_cert: String,
    alice_key: String,
    rogue_cert: String,
    rogue_key: String,
    other_ca_cert: String,
    expired_cert: String,
    expired_key: String,
}

impl TlsFiles {
    /// PEM of the trusted test CA certificate.
    pub fn ca_cert_pem(&self) -> &str {
        &self.pem.ca_cert
    }
    /// PEM of the server certificate.
    pub fn server_cert_pem(&self) -> &str {
        &self.pem.server_cert
    }
    /// PEM of the server private key.
    pub fn server_key_pem(&self) -> &str {
        &self.pem.server_key
    }
    /// PEM of the CN=root client certificate.
    pub fn client_cert_pem(&self) -> &str {
        &self.pem.client_cert
    }
    /// PEM of the CN=root client private key.
    pub fn client_key_pem(&self) -> &str {
        &self.pem.client_key
    }
    /// PEM of the CN=alice client certificate.
    pub fn alice_cert_pem(&self) -> &str {
        &self.pem.alice_cert
    }
    /// PEM of the CN=alice client private key.
    pub fn alice_key_pem(&self) -> &str {
        &self.pem.alice_key
    }
    /// PEM of the rogue (untrusted CA) CN=root client certificate.
    pub fn rogue_cert_pem(&self) -> &str {
        &self.pem.rogue_cert
    }
    /// PEM of the rogue client private key.
    pub fn rogue_key_pem(&self) -> &str {
        &self.pem.rogue_key
    }
    /// PEM of the untrusted CA that signed the rogue certificate.
    pub fn other_ca_cert_pem(&self) -> &str {
        &self.pem.other_ca_cert
    }

    /// PEM of the expired CN=root client certificate.
    pub fn expired_cert_pem(&self) -> &str {
        &self.pem.expired_cert
    }

    /// PEM of the expired client certificate's key.
    pub fn expired_key_pem(&self) -> &str {
        &self.pem.expired_key
    }

    /// Generates a fresh set of certificates and writes them into `dir` (created if needed).
    pub(crate) fn generate(dir: &Path) -> Result<TlsFiles, Error> {
        let tls_err = |what: &str| {
            let what = what.to_owned();
            move |e: rcgen::Error| {
                Error::new(ErrorKind::Tls, format!("generating {what} failed")).source(e)
            }
        };

        let (ca_params, ca_key, ca_pem) = make_ca("etcd-test-ca").map_err(tls_err("the CA"))?;
        let ca = Issuer::from_params(&ca_params, &ca_key);
        let (other_params, other_key, other_pem) =
            make_ca("etcd-test-other-ca").map_err(tls_err("the other CA"))?;
        let other_ca = Issuer::from_params(&other_params, &other_key);

        let (server_cert, server_key) =
            make_leaf(&ca, "etcd-test-server", Leaf::Server).map_err(tls_err("the server cert"))?;
        let (client_cert, client_key) =
            make_leaf(&ca, "root", Leaf::Client).map_err(tls_err("the root client cert"))?;
        let (alice_cert, alice_key) =
            make_leaf(&ca, "alice", Leaf::Client).map_err(tls_err("the alice client cert"))?;
        let (rogue_cert, rogue_key) =
            make_leaf(&other_ca, "root", Leaf::Client).map_err(tls_err("the rogue client cert"))?;
        let (expired_cert, expired_key) = make_leaf(&ca, "root", Leaf::ExpiredClient)
            .map_err(tls_err("the expired client cert"))?;

        let pem = Pems {
            ca_cert: ca_pem,
            server_cert,
            server_key,
            client_cert,
            client_key,
            alice_cert,
            alice_key,
            rogue_cert,
            rogue_key,
            other_ca_cert: other_pem,
            expired_cert,
            expired_key,
        };

        fs::create_dir_all(dir).map_err(|e| {
            Error::new(ErrorKind::Io, format!("creating {} failed", dir.display())).source(e)
        })?;
        let write = |name: &str, contents: &str| -> Result<PathBuf, Error> {
            let path = dir.join(name);
            fs::write(&path, contents).map_err(|e| {
                Error::new(ErrorKind::Io, format!("writing {} failed", path.display())).source(e)
            })?;
            Ok(path)
        };
        Ok(TlsFiles {
            ca_cert: write("ca.crt", &pem.ca_cert)?,
            server_cert: write("server.crt", &pem.server_cert)?,
            server_key: write("server.key", &pem.server_key)?,
            client_cert: write("client.crt", &pem.client_cert)?,
            client_key: write("client.key", &pem.client_key)?,
            alice_cert: write("alice.crt", &pem.alice_cert)?,
            alice_key: write("alice.key", &pem.alice_key)?,
            rogue_cert: write("rogue.crt", &pem.rogue_cert)?,
            rogue_key: write("rogue.key", &pem.rogue_key)?,
            other_ca_cert: write("other-ca.crt", &pem.other_ca_cert)?,
            expired_cert: write("expired.crt", &pem.expired_cert)?,
            expired_key: write("expired.key", &pem.expired_key)?,
            pem,
        })
    }
}

fn make_ca(cn: &str) -> Result<(CertificateParams, KeyPair, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    Ok((params, key, cert.pem()))
}

/// What a leaf certificate is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leaf {
    Server,
    Client,
    /// A client certificate whose validity ended in 2020.
    ExpiredClient,
}

fn make_leaf(
    issuer: &Issuer<'_, &KeyPair>,
    cn: &str,
    leaf: Leaf,
) -> Result<(String, String), rcgen::Error> {
    let server = leaf == Leaf::Server;
    let key = KeyPair::generate()?;
    let sans = if server {
        vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
        ]
    } else {
        Vec::new()
    };
    let mut params = CertificateParams::new(sans)?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = if server {
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    if leaf == Leaf::ExpiredClient {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 12, 31);
    }
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}
