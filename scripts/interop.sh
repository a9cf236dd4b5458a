#!/usr/bin/env bash
# Runs the tests against etcdctl's own `lock` and `elect` (Go's concurrency package in another
# process). Installs etcdctl from Debian's etcd-client package when it is missing (and
# ETCDV3_ETCDCTL_BIN is not set), then runs `cargo test --features etcdctl-interop`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${ETCDV3_ETCDCTL_BIN:-}" ] && ! command -v etcdctl >/dev/null 2>&1; then
    echo "interop: installing etcdctl (apt-get install etcd-client)" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-client >/dev/null
fi
echo "== etcdctl: $("${ETCDV3_ETCDCTL_BIN:-etcdctl}" version | head -n 1)"
cargo test -p etcdv3 --features etcdctl-interop --test etcdctl_interop
