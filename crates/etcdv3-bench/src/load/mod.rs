//! The client-independent core of the benchmark: key encoding, the rate limiter, the worker
//! loop, CPU and memory accounting, the put-and-watch measurement, keeping leases alive, and
//! the report.
//!
//! It knows nothing about any etcd client, so the comparison program in
//! `bench/etcd-client-load` includes these very files (`#[path]`) and measures the other client
//! with exactly the same code.

pub(crate) mod cpu;
pub(crate) mod duration;
pub(crate) mod keys;
pub(crate) mod lease;
pub(crate) mod limiter;
pub(crate) mod mem;
pub(crate) mod report;
pub(crate) mod runner;
pub(crate) mod watch;
