//! A tour of the KV API: put, get, ranges, transactions, compaction and typed errors.
//!
//! ```text
//! cargo run -p etcdv3 --example tour                      # starts a throwaway local etcd
//! cargo run -p etcdv3 --example tour -- 127.0.0.1:2379    # or uses yours (keys under tour/)
//! ```
#![allow(clippy::print_stdout)]

use std::error::Error;

use etcdv3::{Client, Compare, Kv, Op, SortOrder, SortTarget};
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

    println!("\n== bad input is caught before it is sent");
    let err = kv.put("", "value").await.unwrap_err();
    println!("empty key: {err} (kind {:?})", err.kind());

    kv.delete("tour/").prefix().await?;
    println!("\ndone.");
    Ok(())
}
