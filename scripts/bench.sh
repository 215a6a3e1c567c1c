#!/usr/bin/env bash
# walt's benchmark suite, end to end through the real binaries: walt-bench
# starts walt-server on SQLite in a temporary directory, walt-lab with 10000
# simulated nodes and their PoE switches (on 127.70-127.74.x.y), reboots
# through the server's API and the walt CLI, a walt-node agent, and a
# campaign of 100 rounds on 1000 nodes beside a boot floor (walt-bench
# answering the boot reports itself), and a stand-in for WalT's own
# soft-reboot fan-out when python3 is on PATH, then
# prints one line per figure, `name key=value ...`, on stdout (progress goes
# to stderr). It asserts no timings and is not part of scripts/test.sh.
# About nine minutes.
#
# Usage: scripts/bench.sh                       (every figure)
#        scripts/bench.sh --only soft,poe       (a subset: lab,server,soft,dead,poe,rtt,campaign)
#        scripts/bench.sh --quick               (20 nodes, seconds: checks it all works)
#        scripts/bench.sh --help                (every flag: --runs, --sizes, --poe-nodes, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

help=false
for a in "$@"; do case "$a" in -h | -help | --help) help=true ;; esac; done
if ! $help && [ "$(id -u)" -ne 0 ]; then
	echo "bench: the simulated switches serve SNMP on port 161 of loopback addresses: run as root" >&2
	exit 1
fi

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/walt-bench ./cmd/walt-server ./cmd/walt-lab ./cmd/walt-node ./cmd/walt
"$bin/walt-bench" --bin "$bin" "$@"
