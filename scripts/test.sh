#!/usr/bin/env bash
# Runs walt's whole test suite, installing what it needs first.
# Usage: scripts/test.sh            (CI runs exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

scripts/install-deps.sh

scripts/lint.sh

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
# The emulated PC (a VM registered physical, ipmi_sim its BMC): hard reboot
# through IPMI, soft reboot through the kexec hook and without it.
go test -count=1 -timeout 10m -run 'EmulatedPC' ./internal/reboot/bmcreboot

echo "== Debian packages: built, lintian-clean, installed, units verified, purged (scripts/package.sh --check)"
scripts/package.sh --check

# Runs are counted in executions, not seconds: Go 1.26's fuzzing
# coordinator can fail a run with a bare "context deadline exceeded" when a
# time budget ends while a worker is busy (golang/go#75804, fixed in 1.27).
echo "== every fuzz target, a short run each (WALT_FUZZ_EXECS executions, default 5000)"
grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sort | while IFS=: read -r file fn; do
	name=${fn#func }
	dir=$(dirname "$file")
	echo "-- $name ($dir)"
	go test -run '^$' -fuzz "^$name\$" -fuzztime "${WALT_FUZZ_EXECS:-5000}x" "$dir" >/tmp/walt-fuzz.log 2>&1 || { cat /tmp/walt-fuzz.log; exit 1; }
	tail -1 /tmp/walt-fuzz.log
done

# The demo, checked on this host as it is, then as a host without /dev/kvm
# would run it (or, on a host without one, the same again): /dev/kvm absent,
# present and usable, or present but unable to run a guest all happen on
# machines of this kind.
kvm=absent
[ -e /dev/kvm ] && kvm=present
echo "== the demo, checked (scripts/demo.sh --check; /dev/kvm $kvm)"
demo_log=$(mktemp)
scripts/demo.sh --check >"$demo_log" 2>&1 || { cat "$demo_log"; exit 1; }
grep -E '^demo:|^ +vnodes:' "$demo_log"
echo "== the demo, checked as on a host without /dev/kvm"
WALT_KVM_DEVICE=/dev/walt-test-no-kvm scripts/demo.sh --check >"$demo_log" 2>&1 || { cat "$demo_log"; exit 1; }
grep -E '^demo:|^ +vnodes:' "$demo_log"
rm -f "$demo_log"
