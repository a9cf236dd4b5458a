//! TLS and mutual TLS against real etcd members, and the errors a misconfiguration gives.
#![cfg(feature = "tls")]

use std::time::Duration;

use etcdv3::{Client, ErrorKind, Kv, TlsConfig};
use etcdv3_testkit::{EtcdCluster, TlsMode};

async fn tls_cluster(mode: TlsMode) -> EtcdCluster {
    EtcdCluster::builder()
        .members(1)
        .tls(mode)
        .start()
        .await
        .expect("start TLS etcd")
}

async fn connect(endpoints: Vec<String>, tls: TlsConfig) -> etcdv3::Result<Client> {
    Client::builder()
        .endpoints(endpoints)
        .tls(tls)
        .connect_timeout(Duration::from_secs(3))
        .request_timeout(Duration::from_secs(3))
        .connect()
        .await
}

/// Connects and does one put; the error of whichever step failed.
async fn put_through(endpoints: Vec<String>, tls: TlsConfig) -> etcdv3::Result<()> {
    let c = connect(endpoints, tls).await?;
    c.kv().put("k", "v").await.map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_round_trip_with_files_and_pem() {
    let cl = tls_cluster(TlsMode::MutualTls).await;
    let files = cl.tls().unwrap();
    let tls = TlsConfig::new()
        .ca_cert_file(&files.ca_cert)
        .client_cert_files(&files.client_cert, &files.client_key);
    let c = connect(cl.endpoints(), tls).await.unwrap();
    c.kv().put("secure", "yes").await.unwrap();
    assert_eq!(c.kv().get("secure").await.unwrap().kvs()[0].value(), b"yes");

    // PEM text works the same, and `localhost` matches the certificate's DNS name.
    let tls = TlsConfig::new()
        .ca_cert_pem(files.ca_cert_pem())
        .client_cert_pem(files.client_cert_pem(), files.client_key_pem());
    let localhost = cl.endpoint(0).replace("127.0.0.1", "localhost");
    let c = connect(vec![localhost], tls).await.unwrap();
    assert_eq!(c.kv().get("secure").await.unwrap().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_host_port_uses_tls_when_configured() {
    let cl = tls_cluster(TlsMode::Server).await;
    let files = cl.tls().unwrap();
    let bare = cl.endpoint(0).replace("https://", "");
    put_through(vec![bare], TlsConfig::new().ca_cert_file(&files.ca_cert))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_server_certificate_is_named_in_the_error() {
    let cl = tls_cluster(TlsMode::Server).await;
    let files = cl.tls().unwrap();
    let err = put_through(
        cl.endpoints(),
        TlsConfig::new().ca_cert_file(&files.other_ca_cert),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    let text = err.to_string();
    assert!(text.contains("CA"), "{text}");
    assert!(text.contains(&cl.endpoint(0)), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_rogue_client_certificates_are_rejected() {
    let cl = tls_cluster(TlsMode::MutualTls).await;
    let files = cl.tls().unwrap();
    let no_cert = put_through(
        cl.endpoints(),
        TlsConfig::new().ca_cert_file(&files.ca_cert),
    )
    .await
    .unwrap_err();
    assert!(no_cert.is_unavailable(), "{no_cert:?}");
    assert!(
        no_cert.to_string().contains("client certificate"),
        "{no_cert}"
    );

    let rogue = TlsConfig::new()
        .ca_cert_file(&files.ca_cert)
        .client_cert_files(&files.rogue_cert, &files.rogue_key);
    let err = put_through(cl.endpoints(), rogue).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_to_a_tls_port_and_missing_files_fail_clearly() {
    let cl = tls_cluster(TlsMode::Server).await;
    let files = cl.tls().unwrap();
    let http = cl.endpoint(0).replace("https://", "http://");
    let err = Client::builder()
        .endpoints([http])
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    // The server answers an HTTP/2 preface in plaintext by closing the connection, which the
    // client notices before any request is sent.
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");

    let err = connect(
        cl.endpoints(),
        TlsConfig::new().ca_cert_file(files.ca_cert.with_extension("missing")),
    )
    .await
    .unwrap_err();
    assert!(err.is_config(), "{err:?}");
    assert!(
        err.to_string().contains("cannot read CA certificate"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_name_override_and_insecure_skip_verify() {
    let cl = tls_cluster(TlsMode::Server).await;
    let files = cl.tls().unwrap();
    // The certificate names localhost: asking for that name works from 127.0.0.1 ...
    let named = TlsConfig::new()
        .ca_cert_file(&files.ca_cert)
        .server_name("localhost");
    put_through(cl.endpoints(), named).await.unwrap();
    // ... and a name the certificate does not carry is refused.
    let wrong = TlsConfig::new()
        .ca_cert_file(&files.ca_cert)
        .server_name("etcd.invalid");
    let err = put_through(cl.endpoints(), wrong).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    assert!(err.to_string().contains("does not name this host"), "{err}");
    // Skipping verification accepts a server whose CA is unknown.
    let blind = TlsConfig::new()
        .ca_cert_file(&files.other_ca_cert)
        .insecure_skip_verify();
    put_through(cl.endpoints(), blind).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ca_the_system_store_is_used_and_the_error_says_so() {
    let cl = tls_cluster(TlsMode::Server).await;
    // An https:// endpoint with no TLS configuration at all, and a TLS config without a CA:
    // the testkit's CA is in no system store.
    let https = cl.endpoint(0).replace("http://", "https://");
    let https = if https.starts_with("https://") {
        https
    } else {
        format!("https://{https}")
    };
    for err in [
        Client::builder()
            .endpoints([https.clone()])
            .connect_timeout(Duration::from_secs(3))
            .connect()
            .await
            .unwrap_err(),
        connect(vec![https], TlsConfig::new()).await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
        let text = err.to_string();
        assert!(text.contains("system's trusted CAs"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_plaintext_port_says_so() {
    let cl = EtcdCluster::builder().start().await.unwrap();
    let https = cl.endpoint(0).replace("http://", "https://");
    let err = Client::builder()
        .endpoints([https])
        .connect_timeout(Duration::from_secs(3))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    assert!(err.to_string().contains("speak TLS on this port"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_client_certificate_is_named() {
    let cl = tls_cluster(TlsMode::MutualTls).await;
    let files = cl.tls().unwrap();
    let err = put_through(
        cl.endpoints(),
        TlsConfig::new()
            .ca_cert_pem(files.ca_cert_pem())
            .client_cert_pem(files.expired_cert_pem(), files.expired_key_pem()),
    )
    .await
    .unwrap_err();
    // Known before dialling: the certificate's notAfter has passed.
    assert_eq!(err.kind(), ErrorKind::Config, "{err:?}");
    assert!(
        err.to_string()
            .contains("expired at 2020-12-31 00:00:00 UTC"),
        "{err}"
    );
}

/// One client, `https://` and `http://` endpoints of the same cluster: calls go through
/// whichever is up, each with its own scheme.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_http_and_https_endpoints() {
    let cl = EtcdCluster::builder()
        .members(3)
        .tls(TlsMode::Server)
        .plaintext_too(true)
        .start()
        .await
        .unwrap();
    let files = cl.tls().unwrap();
    let plain = cl.plaintext_endpoint(1).expect("a plaintext port");
    assert!(plain.starts_with("http://"));
    let endpoints = vec![cl.endpoint(0), plain, cl.endpoint(2)];
    assert!(endpoints[0].starts_with("https://"), "{endpoints:?}");
    let c = connect(endpoints, TlsConfig::new().ca_cert_file(&files.ca_cert))
        .await
        .unwrap();
    c.kv().put("mixed", "0").await.unwrap();
    // Only the plaintext member up: the calls go over http.
    cl.stop(0).await.unwrap();
    cl.stop(2).await.unwrap();
    // (no quorum: a serializable read answers from the member itself)
    let got = c.kv().get("mixed").serializable().await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"0");
    cl.restart(0).await.unwrap();
    cl.restart(2).await.unwrap();
    cl.wait_healthy(Duration::from_secs(30)).await.unwrap();
    // Only TLS members up: over https.
    cl.stop(1).await.unwrap();
    c.kv().put("mixed", "1").await.unwrap();
    assert_eq!(c.kv().get("mixed").await.unwrap().kvs()[0].value(), b"1");
}
