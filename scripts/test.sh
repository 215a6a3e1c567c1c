#!/usr/bin/env bash
# Runs walt's whole test suite, installing what it needs first.
# Usage: scripts/test.sh            (CI runs exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

scripts/install-deps.sh

echo "== gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

echo "== virtual nodes in real QEMU VMs (no -race: software emulation is slow enough)"
# In CI, one image for every package's QEMU tests (each would build its own).
if [ "${CI:-}" = true ] && [ -z "${WALT_VNODE_IMAGE:-}" ] && command -v qemu-system-x86_64 >/dev/null; then
	vnode_data=$(mktemp -d)
	trap 'rm -rf "$vnode_data"' EXIT
	scripts/build-vnode-image.sh --data "$vnode_data"
	export WALT_VNODE_IMAGE=$vnode_data/images/default
fi
go test -count=1 -timeout 10m ./internal/vnode
go test -count=1 -timeout 10m -run 'QEMU' ./internal/cli

echo "== fuzzing the protocol line parser (short run)"
go test -run '^$' -fuzz '^FuzzParseRequest$' -fuzztime 10s ./internal/netservice

echo "== the demo, checked (scripts/demo.sh --check)"
scripts/demo.sh --check >/tmp/walt-demo-check.log 2>&1 || { cat /tmp/walt-demo-check.log; exit 1; }
grep -E '^demo:' /tmp/walt-demo-check.log
