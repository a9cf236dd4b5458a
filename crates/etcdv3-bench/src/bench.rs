//! The workloads, run with the etcdv3 client's public API.

use std::sync::Arc;
use std::time::Duration;

use etcdv3::{Client, Isolation, KeyRange, Kv, KvClient, Op, Stm, TlsConfig};
use rand::Rng;
use rand::rngs::SmallRng;

use crate::cli::{
    Command, Consistency, Global, PutArgs, RangeArgs, StmArgs, StmIsolation, StmLocker,
    TxnMixedArgs, TxnPutArgs,
};
use crate::lease;
use crate::load::keys::{KeySpec, random_value};
use crate::load::report::TextOptions;
use crate::load::runner::{Outcome, Plan, RunOutput, run};
use crate::watch::Job;

/// Name of this tool in `--json` output.
const TOOL: &str = "etcdv3-bench";

/// Runs the chosen benchmark and returns what to print on stdout.
pub(crate) async fn main(global: &Global, command: &Command) -> Result<String, String> {
    let mut builder = client_builder(global)?;
    let (name, prepared) = prepare(global, command)?;
    if global.target_leader {
        let leader = find_leader(&builder, &endpoints(global)).await?;
        builder = builder.endpoints([leader]);
    }
    let clients = connect(builder.clone(), global.conns).await?;
    let output = prepared.run(global, &builder, &clients).await;
    let hashkv = match (&output, command) {
        (Ok(_), Command::Put(a)) if a.check_hashkv => {
            Some(check_hashkv(&clients[0], &endpoints(global)).await)
        }
        _ => None,
    };
    for c in &clients {
        c.close().await;
    }
    let output = output?;
    let hashkv = hashkv.transpose()?;
    if global.json {
        let report = output.json(TOOL, name, global.clients, global.conns);
        let mut value = serde_json::to_value(&report)
            .map_err(|e| format!("cannot encode the JSON report: {e}"))?;
        if let (Some((revision, hash)), Some(obj)) = (hashkv, value.as_object_mut()) {
            obj.insert(
                "hashkv".to_owned(),
                serde_json::json!({ "consistent": true, "revision": revision, "hash": hash }),
            );
        }
        serde_json::to_string_pretty(&value)
            .map(|s| s + "\n")
            .map_err(|e| format!("cannot encode the JSON report: {e}"))
    } else {
        let mut text = output.text(TextOptions {
            precise: global.precise,
            sample: global.sample,
        });
        if let Some((revision, hash)) = hashkv {
            text.push_str(&format!(
                "\nConsistent hashkv across all endpoints: {hash} at revision {revision}\n"
            ));
        }
        Ok(text)
    }
}

/// The endpoints given, trimmed.
fn endpoints(g: &Global) -> Vec<String> {
    g.endpoints
        .iter()
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect()
}

/// The endpoint of the leader (`--target-leader`): the one whose status names itself leader.
async fn find_leader(builder: &etcdv3::ClientBuilder, eps: &[String]) -> Result<String, String> {
    let probe = builder
        .clone()
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut found = None;
    for ep in eps {
        if let Ok(status) = probe.maintenance().status(ep.as_str()).await
            && status.leader() == status.header().member_id()
        {
            found = Some(ep.clone());
            break;
        }
    }
    probe.close().await;
    found.ok_or_else(|| {
        format!(
            "--target-leader: none of the endpoints ({}) is the leader",
            eps.join(", ")
        )
    })
}

/// `put --check-hashkv`: every endpoint's HashKV at one revision must agree. The revision and
/// the hash, or an error naming each endpoint's hash.
async fn check_hashkv(client: &Client, eps: &[String]) -> Result<(i64, u32), String> {
    let revision = client
        .kv()
        .get("\0")
        .await
        .map_err(|e| format!("--check-hashkv: cannot read the revision: {e}"))?
        .header()
        .revision();
    let mut hashes = Vec::with_capacity(eps.len());
    for ep in eps {
        let resp = client
            .maintenance()
            .hash_kv(ep.as_str(), revision)
            .await
            .map_err(|e| format!("--check-hashkv: HashKV of {ep}: {e}"))?;
        hashes.push((ep.as_str(), resp.hash()));
    }
    let first = hashes[0].1;
    if hashes.iter().all(|(_, h)| *h == first) {
        Ok((revision, first))
    } else {
        let listed: Vec<String> = hashes.iter().map(|(ep, h)| format!("{ep}: {h}")).collect();
        Err(format!(
            "--check-hashkv: the endpoints disagree at revision {revision}: {}",
            listed.join(", ")
        ))
    }
}

/// Turns the global flags into a client configuration, rejecting what is not supported yet.
fn client_builder(g: &Global) -> Result<etcdv3::ClientBuilder, String> {
    let endpoints = endpoints(g);
    if endpoints.is_empty() {
        return Err("--endpoints is empty".into());
    }
    if g.conns == 0 || g.clients == 0 {
        return Err("--conns and --clients must be at least 1".into());
    }
    let mut b = Client::builder()
        .endpoints(endpoints)
        .propagate_deadlines(g.propagate_deadlines);
    if let Some(user) = &g.user {
        let Some((name, password)) = user.split_once(':') else {
            return Err(format!(
                "--user {user:?}: give the password too, as --user {user}:PASSWORD (this tool \
                 does not prompt for it)"
            ));
        };
        b = b.user(name, password);
    }
    if !g.dial_timeout.is_zero() {
        b = b.connect_timeout(g.dial_timeout);
    }
    match (&g.cert, &g.key_file) {
        (Some(_), None) | (None, Some(_)) => {
            return Err("--cert and --key must be given together".into());
        }
        _ => {}
    }
    if g.cert.is_some() || g.cacert.is_some() || g.insecure_skip_tls_verify {
        let mut tls = TlsConfig::new();
        if g.insecure_skip_tls_verify {
            tls = tls.insecure_skip_verify();
        }
        if let Some(ca) = &g.cacert {
            tls = tls.ca_cert_file(ca);
        }
        if let (Some(cert), Some(key)) = (&g.cert, &g.key_file) {
            tls = tls.client_cert_files(cert, key);
        }
        b = b.tls(tls);
    }
    Ok(b)
}

/// Opens `conns` independent clients, concurrently.
async fn connect(builder: etcdv3::ClientBuilder, conns: usize) -> Result<Vec<Client>, String> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..conns {
        let b = builder.clone();
        set.spawn(async move { (i, b.connect().await) });
    }
    let mut clients = Vec::with_capacity(conns);
    while let Some(joined) = set.join_next().await {
        let (i, result) = joined.map_err(|e| format!("connect task failed: {e}"))?;
        let client = result.map_err(|e| format!("cannot connect: {e}"))?;
        clients.push((i, client));
    }
    clients.sort_by_key(|(i, _)| *i);
    Ok(clients.into_iter().map(|(_, c)| c).collect())
}

/// A validated workload, ready to run.
#[derive(Debug)]
enum Prepared {
    Put {
        keys: KeySpec,
        value: Arc<[u8]>,
        rate: f64,
        total: u64,
        compact_interval: Duration,
        compact_delta: i64,
    },
    Range {
        keys: KeyRange,
        serializable: bool,
        limit: i64,
        count_only: bool,
        keys_only: bool,
        rate: f64,
        total: u64,
    },
    TxnPut {
        keys: KeySpec,
        ops: usize,
        value: Arc<[u8]>,
        rate: f64,
        total: u64,
    },
    TxnMixed {
        read: KeyRange,
        serializable: bool,
        limit: i64,
        keys: KeySpec,
        value: Arc<[u8]>,
        read_probability: f64,
        rate: f64,
        total: u64,
    },
    /// One of the watch benchmarks (`src/watch.rs`).
    Watch(Job),
    /// `lease-keepalive` (`src/lease.rs`).
    Lease(lease::Job),
    Stm {
        locker: StmLocker,
        isolation: Isolation,
        keys: KeySpec,
        keys_per_txn: usize,
        writes: usize,
        val_size: usize,
        rate: f64,
        total: u64,
    },
}

fn value(size: usize) -> Arc<[u8]> {
    random_value(size, &mut rand::rng()).into()
}

fn check_rate(rate: f64) -> Result<(), String> {
    if rate.is_finite() && rate >= 0.0 {
        Ok(())
    } else {
        Err(format!("--rate must be 0 or positive, got {rate}"))
    }
}

fn prepare(g: &Global, command: &Command) -> Result<(&'static str, Prepared), String> {
    Ok(match command {
        Command::Put(a) => ("put", prepare_put(a)?),
        Command::Range(a) => ("range", prepare_range(a)?),
        Command::TxnPut(a) => ("txn-put", prepare_txn_put(a)?),
        Command::TxnMixed(a) => ("txn-mixed", prepare_txn_mixed(a)?),
        Command::Watch(a) => ("watch", Prepared::Watch(Job::watch(a)?)),
        Command::WatchGet(a) => ("watch-get", Prepared::Watch(Job::get(a)?)),
        Command::WatchLatency(a) => ("watch-latency", Prepared::Watch(Job::latency(a)?)),
        Command::WatchScale(a) => ("watch-scale", Prepared::Watch(Job::scale(a)?)),
        Command::LeaseKeepalive(a) => ("lease-keepalive", Prepared::Lease(lease::Job::new(a, g)?)),
        Command::Stm(a) => ("stm", prepare_stm(a)?),
    })
}

fn prepare_put(a: &PutArgs) -> Result<Prepared, String> {
    check_rate(a.rate)?;
    if a.compact_index_delta < 0 {
        return Err("--compact-index-delta must not be negative".into());
    }
    let keys = KeySpec {
        prefix: a.prefix.clone().into_bytes(),
        size: a.key_size,
        space: a.key_space_size,
        sequential: a.sequential_keys,
    };
    keys.validate()?;
    Ok(Prepared::Put {
        keys,
        value: value(a.val_size),
        rate: a.rate,
        total: a.total,
        compact_interval: a.compact_interval,
        compact_delta: a.compact_index_delta,
    })
}

fn prepare_range(a: &RangeArgs) -> Result<Prepared, String> {
    check_rate(a.rate)?;
    if a.limit < 0 {
        return Err("--limit must not be negative".into());
    }
    let keys = match (&a.end, a.prefix) {
        (_, true) => KeyRange::prefix(a.key.as_str()),
        (Some(end), false) => KeyRange::range(a.key.as_str(), end.as_str()),
        (None, false) => KeyRange::key(a.key.as_str()),
    };
    Ok(Prepared::Range {
        keys,
        serializable: a.consistency == Consistency::S,
        limit: a.limit,
        count_only: a.count_only,
        keys_only: a.keys_only,
        rate: a.rate,
        total: a.total,
    })
}

fn prepare_txn_put(a: &TxnPutArgs) -> Result<Prepared, String> {
    check_rate(a.rate)?;
    if a.txn_ops == 0 {
        return Err("--txn-ops must be at least 1".into());
    }
    if a.txn_ops as u64 > a.key_space_size {
        return Err(format!(
            "--txn-ops ({}) must not exceed --key-space-size ({}): a transaction cannot put \
             the same key twice",
            a.txn_ops, a.key_space_size
        ));
    }
    let keys = KeySpec {
        prefix: Vec::new(),
        size: a.key_size,
        space: a.key_space_size,
        sequential: true,
    };
    keys.validate()?;
    Ok(Prepared::TxnPut {
        keys,
        ops: a.txn_ops,
        value: value(a.val_size),
        rate: a.rate,
        total: a.total,
    })
}

fn prepare_txn_mixed(a: &TxnMixedArgs) -> Result<Prepared, String> {
    check_rate(a.rate)?;
    if !(a.rw_ratio.is_finite() && a.rw_ratio >= 0.0) {
        return Err("--rw-ratio must be 0 or positive".into());
    }
    if a.limit < 0 {
        return Err("--limit must not be negative".into());
    }
    let end = a.end.as_deref().unwrap_or(a.end_key.as_str());
    let read = if end.is_empty() {
        KeyRange::key(a.key.as_str())
    } else {
        KeyRange::range(a.key.as_str(), end)
    };
    let keys = KeySpec {
        prefix: Vec::new(),
        size: a.key_size,
        space: a.key_space_size,
        sequential: false,
    };
    keys.validate()?;
    Ok(Prepared::TxnMixed {
        read,
        serializable: a.consistency == Consistency::S,
        limit: a.limit,
        keys,
        value: value(a.val_size),
        read_probability: a.rw_ratio / (1.0 + a.rw_ratio),
        rate: a.rate,
        total: a.total,
    })
}

/// Go's checks of the `stm` flags, and its key layout: a 16-byte field holding the varint
/// of the key index.
fn prepare_stm(a: &StmArgs) -> Result<Prepared, String> {
    check_rate(a.rate)?;
    if a.keys == 0 {
        return Err(format!("expected positive --keys, got ({})", a.keys));
    }
    if !(0..=100).contains(&a.txn_wr_percent) {
        return Err(format!(
            "expected [0, 100] --txn-wr-percent, got ({})",
            a.txn_wr_percent
        ));
    }
    if a.keys_per_txn > a.keys {
        return Err(format!(
            "expected --keys-per-txn between 0 and {}, got ({})",
            a.keys, a.keys_per_txn
        ));
    }
    let keys_per_txn = usize::try_from(a.keys_per_txn)
        .map_err(|_| format!("--keys-per-txn {} is too large", a.keys_per_txn))?;
    let keys = KeySpec {
        prefix: Vec::new(),
        size: 16,
        space: a.keys,
        sequential: false,
    };
    keys.validate()?;
    let isolation = match a.isolation {
        StmIsolation::C => Isolation::ReadCommitted,
        StmIsolation::R => Isolation::RepeatableReads,
        StmIsolation::S => Isolation::Serializable,
        StmIsolation::Ss => Isolation::SerializableSnapshot,
    };
    Ok(Prepared::Stm {
        locker: a.stm_locker,
        isolation,
        keys,
        keys_per_txn,
        // Go: int(float32(keys * percent) / 100), the same as integer division here.
        writes: keys_per_txn * a.txn_wr_percent as usize / 100,
        val_size: a.val_size,
        rate: a.rate,
        total: a.total,
    })
}

/// What an `stm` worker holds: its KV client and, with `--stm-locker lock-client` or
/// `lock-rpc`, the lock every transaction takes (named `stmlock`, as Go's tool).
#[derive(Clone)]
struct StmWorker {
    kv: KvClient,
    locker: Locker,
}

#[derive(Clone)]
enum Locker {
    None,
    /// The client-side mutex, on the worker's own session.
    Client(etcdv3::Mutex),
    /// The v3lock RPC, with the worker's session lease.
    Rpc(etcdv3::LockServiceClient, etcdv3::Session),
}

impl StmWorker {
    /// Takes the lock, if any; the key to unlock (for the RPC).
    async fn lock(&self) -> etcdv3::Result<Vec<u8>> {
        match &self.locker {
            Locker::None => Ok(Vec::new()),
            Locker::Client(m) => m.lock().await.map(|_| Vec::new()),
            Locker::Rpc(svc, session) => svc
                .lock("stmlock", session.lease())
                .await
                .map(|r| r.key().to_vec()),
        }
    }

    async fn unlock(&self, key: Vec<u8>) -> etcdv3::Result<()> {
        match &self.locker {
            Locker::None => Ok(()),
            Locker::Client(m) => m.unlock().await.map(drop),
            Locker::Rpc(svc, _) => svc.unlock(key).await.map(drop),
        }
    }
}

/// One `StmWorker` per worker, worker `i` on connection `i % conns`.
async fn stm_workers(
    locker: StmLocker,
    clients: &[Client],
    workers: usize,
) -> Result<Vec<StmWorker>, String> {
    let mut out = Vec::with_capacity(workers);
    for i in 0..workers {
        let client = &clients[i % clients.len()];
        let locker = match locker {
            StmLocker::Stm => Locker::None,
            StmLocker::LockClient | StmLocker::LockRpc => {
                let session = etcdv3::Session::new(client)
                    .await
                    .map_err(|e| format!("cannot create the lock session: {e}"))?;
                if locker == StmLocker::LockClient {
                    Locker::Client(
                        etcdv3::Mutex::new(&session, "stmlock")
                            .map_err(|e| format!("cannot create the mutex: {e}"))?,
                    )
                } else {
                    Locker::Rpc(client.lock_service(), session)
                }
            }
        };
        out.push(StmWorker {
            kv: client.kv(),
            locker,
        });
    }
    Ok(out)
}

/// `n` distinct random keys of `keys`, each with a value to write for the first `writes`.
fn stm_request(
    keys: &KeySpec,
    n: usize,
    writes: usize,
    val_size: usize,
    rng: &mut SmallRng,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut picked: Vec<Vec<u8>> = Vec::with_capacity(n);
    while picked.len() < n {
        let key = keys.key_for_request(0, rng);
        if !picked.contains(&key) {
            picked.push(key);
        }
    }
    let values = (0..writes).map(|_| random_value(val_size, rng)).collect();
    (picked, values)
}

fn outcome<T>(kv: KvClient, part: usize, r: etcdv3::Result<T>) -> Outcome<KvClient> {
    (kv, part, r.map(drop).map_err(|e| e.to_string()))
}

impl Prepared {
    async fn run(
        self,
        g: &Global,
        builder: &etcdv3::ClientBuilder,
        clients: &[Client],
    ) -> Result<RunOutput, String> {
        let kvs: Vec<KvClient> = clients.iter().map(Client::kv).collect();
        let plan = |parts: Vec<&'static str>, total: u64, rate: f64| Plan {
            clients: g.clients,
            total,
            rate,
            parts,
            progress: !g.json,
        };
        Ok(match self {
            Prepared::Watch(job) => return job.run(g, builder, clients).await,
            Prepared::Lease(job) => return job.run(g, clients).await,
            Prepared::Put {
                keys,
                value,
                rate,
                total,
                compact_interval,
                compact_delta,
            } => {
                let compactor = (!compact_interval.is_zero()).then(|| {
                    tokio::spawn(compact_periodically(
                        kvs[0].clone(),
                        compact_interval,
                        compact_delta,
                    ))
                });
                let out = run(&plan(vec!["put"], total, rate), &kvs, move |kv, i, rng| {
                    let key = keys.key_for_request(i, rng);
                    let value = value.to_vec();
                    async move {
                        let r = kv.put(key, value).await;
                        outcome(kv, 0, r)
                    }
                })
                .await;
                if let Some(task) = compactor {
                    task.abort();
                }
                out
            }
            Prepared::Range {
                keys,
                serializable,
                limit,
                count_only,
                keys_only,
                rate,
                total,
            } => {
                run(&plan(vec!["range"], total, rate), &kvs, move |kv, _, _| {
                    let keys = keys.clone();
                    async move {
                        let mut get = kv.get(keys).limit(limit);
                        if serializable {
                            get = get.serializable();
                        }
                        if count_only {
                            get = get.count_only();
                        }
                        if keys_only {
                            get = get.keys_only();
                        }
                        let r = get.await;
                        outcome(kv, 0, r)
                    }
                })
                .await
            }
            Prepared::TxnPut {
                keys,
                ops,
                value,
                rate,
                total,
            } => {
                let plan = plan(vec!["txn-put"], total, rate);
                run(&plan, &kvs, move |kv, i, _| {
                    let first = i * ops as u64;
                    let puts: Vec<Op> = (0..ops as u64)
                        .map(|j| Op::put(keys.key(first + j), value.to_vec()).into())
                        .collect();
                    async move {
                        let r = kv.txn().and_then(puts).await;
                        outcome(kv, 0, r)
                    }
                })
                .await
            }
            Prepared::TxnMixed {
                read,
                serializable,
                limit,
                keys,
                value,
                read_probability,
                rate,
                total,
            } => {
                let plan = plan(vec!["read", "write"], total, rate);
                run(&plan, &kvs, move |kv, i, rng: &mut SmallRng| {
                    let (part, op): (usize, Op) = if rng.random::<f64>() < read_probability {
                        let mut get = Op::get(read.clone()).limit(limit);
                        if serializable {
                            get = get.serializable();
                        }
                        (0, get.into())
                    } else {
                        let put = Op::put(keys.key_for_request(i, rng), value.to_vec());
                        (1, put.into())
                    };
                    async move {
                        let r = kv.txn().and_then([op]).await;
                        outcome(kv, part, r)
                    }
                })
                .await
            }
            Prepared::Stm {
                locker,
                isolation,
                keys,
                keys_per_txn,
                writes,
                val_size,
                rate,
                total,
            } => {
                let plan = plan(vec!["stm"], total, rate);
                // One worker each: a locker's session must not be shared (a Mutex is
                // re-entrant per session).
                let workers = stm_workers(locker, clients, g.clients).await?;
                run(&plan, &workers, move |w: StmWorker, _, rng| {
                    let (picked, values) = stm_request(&keys, keys_per_txn, writes, val_size, rng);
                    async move {
                        let held = w.lock().await;
                        let r = match held {
                            Err(e) => Err(e),
                            Ok(key) => {
                                let r = Stm::new(&w.kv)
                                    .isolation(isolation)
                                    .run(|txn| {
                                        let (picked, values) = (&picked, &values);
                                        async move {
                                            for (j, key) in picked.iter().enumerate() {
                                                txn.get(key.as_slice()).await?;
                                                if let Some(v) = values.get(j) {
                                                    txn.put(key.as_slice(), v.as_slice())?;
                                                }
                                            }
                                            Ok::<_, etcdv3::Error>(())
                                        }
                                    })
                                    .await;
                                match w.unlock(key).await {
                                    Ok(()) => r,
                                    Err(e) => r.and(Err(e)),
                                }
                            }
                        };
                        (w, 0, r.map_err(|e| e.to_string()))
                    }
                })
                .await
            }
        })
    }
}

/// Every `interval`, compacts to the current revision minus `delta` (put's
/// `--compact-interval`). Runs until aborted; failures are skipped, as a later round retries.
async fn compact_periodically(kv: KvClient, interval: Duration, delta: i64) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Ok(resp) = kv.get("compact-probe").count_only().await else {
            continue;
        };
        let target = resp.header().revision() - delta;
        if target > 0 {
            let _ = kv.compact(target).await;
        }
    }
}
