#!/usr/bin/env bash
# Runs the KV, Txn, connection, Lease, Watch, Auth and TLS suites against other etcd server
# releases (default: 3.4, 3.5 and 3.7; the main suite uses 3.6). Server binaries come from the
# crate registry (etcd-bin-vendored-linux-amd64, whose version is the etcd version), so only cargo
# is needed.
#
#   scripts/compat.sh                 # the default versions
#   scripts/compat.sh 3.5.34 3.7.2    # chosen versions
set -euo pipefail
cd "$(dirname "$0")/.."

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.4.45 3.5.34 3.7.2)
cargo_home=${CARGO_HOME:-$HOME/.cargo}

etcd_binary() {
    local v=$1 dir
    dir=$(mktemp -d)
    mkdir -p "$dir/src"
    : >"$dir/src/lib.rs"
    cat >"$dir/Cargo.toml" <<TOML
[package]
name = "fetch-etcd"
version = "0.0.0"
edition = "2021"
[dependencies]
etcd-bin-vendored-linux-amd64 = "=$v"
TOML
    cargo fetch --quiet --manifest-path "$dir/Cargo.toml" >&2
    rm -rf "$dir"
    find "$cargo_home/registry/src" -path "*/etcd-bin-vendored-linux-amd64-$v/bin/etcd" -print -quit
}

failed=()
for v in "${versions[@]}"; do
    bin=$(etcd_binary "$v")
    if [ -z "$bin" ]; then
        echo "compat: no etcd binary found for $v" >&2
        failed+=("$v")
        continue
    fi
    echo "== etcd $v ($("$bin" --version | head -n 1))"
    if ! ETCDV3_ETCD_BIN="$bin" cargo test -p etcdv3 --test kv --test txn --test connect --test lease --test watch --test example_watch --test auth --test auth_admin --test tls; then
        failed+=("$v")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "compat: failed against etcd ${failed[*]}" >&2
    exit 1
fi
echo "compat: all passed against etcd ${versions[*]}"
