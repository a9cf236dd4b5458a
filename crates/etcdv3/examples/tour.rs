//! A tour of the client: put, get, ranges, transactions, compaction, watches, leases and typed
//! errors.
//!
//! ```text
//! cargo run -p etcdv3 --example tour                      # starts a throwaway local etcd
//! cargo run -p etcdv3 --example tour -- 127.0.0.1:2379    # or uses yours (keys under tour/)
//! ```
#![allow(clippy::print_stdout)]

use std::error::Error;

use etcdv3::{Client, Compare, EventKind, Kv, Op, SortOrder, SortTarget};
use etcdv3_testkit::EtcdCluster;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let endpoints: Vec<String> = std::env::args().skip(1).collect();
    // With no endpoint given, start a real etcd member on a free loopback port; it is stopped
    // and its data removed when `_local` is dropped at the end of main.
    let (_local, endpoints) = if endpoints.is_empty() {
        println!("starting a local etcd ...");
        let cluster = EtcdCluster::single().await?;
        println!(
            "  etcd {} at {}",
            cluster.etcd_version(),
            cluster.endpoint(0)
        );
        let eps = cluster.endpoints();
        (Some(cluster), eps)
    } else {
        (None, endpoints)
    };

    let client = Client::connect(endpoints).await?;
    let kv = client.kv();
    kv.delete("tour/").prefix().await?;

    println!("\n== put and get");
    let put = kv.put("tour/greeting", "hello").await?;
    println!(
        "put tour/greeting=hello at revision {}",
        put.header().revision()
    );
    let got = kv.get("tour/greeting").await?;
    let item = &got.kvs()[0];
    println!(
        "get tour/greeting -> {} (version {}, created at {})",
        item.value_str()?,
        item.version(),
        item.create_revision()
    );
    let prev = kv.put("tour/greeting", "bonjour").prev_kv().await?;
    println!(
        "overwrote it; the previous value was {:?}",
        prev.prev_kv()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
    );

    println!("\n== ranges");
    for (k, v) in [
        ("tour/fruit/apple", "3"),
        ("tour/fruit/banana", "12"),
        ("tour/fruit/cherry", "7"),
    ] {
        kv.put(k, v).await?;
    }
    let fruit = kv
        .get("tour/fruit/")
        .prefix()
        .sort(SortTarget::Key, SortOrder::Descend)
        .await?;
    for item in fruit.kvs() {
        println!("  {} = {}", item.key_str()?, item.value_str()?);
    }
    let first_two = kv.get("tour/fruit/").prefix().limit(2).await?;
    println!(
        "limit 2 -> {} keys, more: {}, count: {}",
        first_two.kvs().len(),
        first_two.more(),
        first_two.count()
    );

    println!("\n== transactions");
    let txn = kv
        .txn()
        .when([Compare::value("tour/greeting").eq("bonjour")])
        .and_then([Op::put("tour/greeting", "hallo")])
        .or_else([Op::get("tour/greeting")])
        .await?;
    println!(
        "compare-and-swap bonjour -> hallo succeeded: {}",
        txn.succeeded()
    );
    let again = kv
        .txn()
        .when([Compare::value("tour/greeting").eq("bonjour")])
        .and_then([Op::put("tour/greeting", "ciao")])
        .or_else([Op::get("tour/greeting")])
        .await?;
    let current = again.responses()[0]
        .as_get()
        .map(|g| g.kvs()[0].value_str().map(str::to_owned));
    println!(
        "second swap succeeded: {} (value is {:?})",
        again.succeeded(),
        current.transpose()?
    );

    println!("\n== compaction");
    let rev = kv.put("tour/counter", "1").await?.header().revision();
    kv.put("tour/counter", "2").await?;
    let old = kv.get("tour/counter").revision(rev).await?;
    println!("read at revision {rev}: {}", old.kvs()[0].value_str()?);
    let latest = kv.put("tour/counter", "3").await?.header().revision();
    kv.compact(latest).physical().await?;
    println!("compacted up to revision {latest}");
    match kv.get("tour/counter").revision(rev).await {
        Err(e) if e.is_compacted() => println!(
            "reading revision {rev} again: {e}\n  -> typed: is_compacted() = true, compact_revision() = {:?}",
            e.compact_revision()
        ),
        other => println!("unexpected: {other:?}"),
    }

    println!("\n== watch");
    let mut watch = client.watch("tour/fruit/").prefix().prev_kv().await?;
    kv.put("tour/fruit/apple", "4").await?;
    kv.delete("tour/fruit/banana").await?;
    let mut seen = 0;
    while seen < 2 {
        let Some(resp) = watch.message().await? else {
            break;
        };
        for e in resp.events() {
            seen += 1;
            let was = e
                .prev_kv()
                .map(|p| String::from_utf8_lossy(p.value()).into_owned());
            match e.kind() {
                EventKind::Put => println!(
                    "  revision {}: put {} = {} (was {was:?})",
                    e.revision(),
                    e.kv().key_str()?,
                    e.kv().value_str()?
                ),
                EventKind::Delete => println!(
                    "  revision {}: deleted {} (was {was:?})",
                    e.revision(),
                    e.kv().key_str()?
                ),
            }
        }
    }
    drop(watch); // cancels it on the server

    println!("\n== leases");
    let lease = client.lease().grant(30).await?;
    kv.put("tour/session", "alive").lease(lease.id()).await?;
    let ttl = client.lease().time_to_live(lease.id()).with_keys().await?;
    println!(
        "lease {:x}: {} s left of {}, keys {:?}",
        lease.id(),
        ttl.ttl(),
        ttl.granted_ttl(),
        ttl.keys()
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>()
    );
    client.lease().revoke(lease.id()).await?;
    let gone = kv.get("tour/session").await?.kvs().is_empty();
    println!("revoked it: tour/session is gone: {gone}");

    println!("\n== bad input is caught before it is sent");
    let err = kv.put("", "value").await.unwrap_err();
    println!("empty key: {err} (kind {:?})", err.kind());

    kv.delete("tour/").prefix().await?;
    println!("\ndone.");
    Ok(())
}
