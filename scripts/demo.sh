#!/usr/bin/env bash
# The walt tour: a walt server on its embedded SQLite database (in a
# temporary directory) and a simulated testbed (walt-lab) of 12 nodes whose
# agents speak WalT's real node protocol on loopback addresses, powered by a
# simulated PoE switch speaking real SNMP. Some nodes are faulty on purpose.
#
# Usage: scripts/demo.sh           (on a terminal: keeps the testbed running
#                                   at the end, until Ctrl-C)
#        scripts/demo.sh --check   (non-interactive; checks every outcome,
#                                   exits 1 on a surprise; the tests run it)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
check=false
[ "${1:-}" = --check ] && check=true

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: the simulated switches serve SNMP on port 161 of loopback addresses: run as root" >&2
	exit 1
fi
scripts/install-deps.sh

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
failures=0
expect() { # expect FILE PATTERN DESCRIPTION
	if grep -qE -- "$2" "$1"; then
		$check && echo "   [ok] $3"
	else
		echo "   [UNEXPECTED] $3: no line matching '$2'" >&2
		failures=$((failures + 1))
	fi
	return 0
}
# walt runs the CLI, echoing the command line first, and keeps its output
# (both streams) in $work/out.
walt() {
	printf '$ walt %s\n' "$*"
	set +e
	"$work/bin/walt" "$@" >"$work/out" 2>&1
	status=$?
	set -e
	sed 's/^/  /' "$work/out"
	[ $status -eq 0 ] || echo "  (exit status $status)"
}

say "building walt, walt-server, walt-lab and walt-node"
go build -o "$work/bin/" ./cmd/walt ./cmd/walt-server ./cmd/walt-lab ./cmd/walt-node

port=12345
while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
export WALT_SERVER=http://127.0.0.1:$port WALT_USER=demo
"$work/bin/walt-server" --data "$work/data" --listen 127.0.0.1:$port 2>"$work/server.log" &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
faults=node03=refused,node04=hung,node05=ko,node06=not-poe
"$work/bin/walt-lab" --nodes 12 --boot-time 300ms-800ms --faults $faults >"$work/lab.log" 2>&1 &
pids+=($!)

say "a server on SQLite in $work/data, a lab of 12 nodes on switch1"
echo "   faulty on purpose: node03 refuses connections, node04 never answers,"
echo "   node05 answers KO, node06 is not powered by its switch port"
# wait_booted N waits until N nodes have reported their boot to the server.
wait_booted() {
	for _ in $(seq 200); do
		[ "$("$work/bin/walt" node show --all --json 2>/dev/null | grep -o '"booted": *true' | wc -l)" -ge "$1" ] && return
		sleep 0.05
	done
}
wait_booted 12
walt node show --all
expect "$work/out" 'node12' "all 12 nodes registered themselves"

say "reboot every node: healthy ones reboot themselves, faulty ones are power-cycled"
walt node reboot all-nodes
expect "$work/out" '^12 nodes: rebooted OK\.$' "all 12 nodes rebooted (3 of them through PoE)"
[ $status -eq 0 ] || { echo "   [UNEXPECTED] exit status $status" >&2; failures=$((failures + 1)); }

wait_booted 12
say "the same, as JSON for scripts: each node's methods and errors (node03, node04 shown)"
walt node reboot --json node03,node04
expect "$work/out" 'connection refused' "node03's soft reboot failed with connection refused"
expect "$work/out" 'timed out waiting for reply' "node04's soft reboot timed out"
expect "$work/out" 'PoE-reboot' "both were power-cycled"

wait_booted 12
say "forbid PoE reboots on switch1: failures are explained per node"
walt device config switch1 poe.reboots=false
walt node reboot node01,node03,node05
expect "$work/out" 'Node node01: rebooted OK\.' "node01 still reboots itself"
expect "$work/out" 'Node node03: failed soft-reboot \(connection refused\) and PoE-reboot \(.*forbidden on switch\)' "node03 explained"
expect "$work/out" 'Node node05: failed soft-reboot \(/bin/walt-network-reboot is not executable on image\) and PoE-reboot \(.*forbidden on switch\)' "node05 explained"
[ $status -eq 1 ] || { echo "   [UNEXPECTED] exit status $status, want 1" >&2; failures=$((failures + 1)); }
walt device config switch1 poe.reboots=true

wait_booted 10
say "--hard skips the soft reboot: a node powered by something else is refused, not cut"
walt node reboot --hard node02,node06
expect "$work/out" 'Node node02: rebooted OK\.' "node02 power-cycled"
expect "$work/out" 'Node node06: failed PoE-reboot \(.*node seems not PoE-powered\)' "node06 left alone"

say "an unknown node: nothing is rebooted"
walt node reboot node02,nodeXX
expect "$work/out" 'nodeXX' "the culprit is named"
[ $status -eq 2 ] || [ $status -eq 1 ] || { echo "   [UNEXPECTED] exit status $status" >&2; failures=$((failures + 1)); }

if $check; then
	if [ $failures -gt 0 ]; then
		echo "demo: $failures unexpected outcomes; server log:" >&2
		tail -20 "$work/server.log" >&2
		exit 1
	fi
	echo
	echo "demo: every outcome as expected"
	exit 0
fi

say "your turn"
cat <<EOF
The server and the lab keep running until Ctrl-C. In another shell:
   export WALT_SERVER=$WALT_SERVER WALT_USER=demo
   alias walt=$work/bin/walt
   walt node show --all
   walt node reboot node03            # falls back to PoE
   walt node reboot --hard all-nodes  # one SNMP SET off and one on for the switch
   walt device config switch1         # the switch's settings (community masked)
   curl -s \$WALT_SERVER/api/v1/nodes  # WalT's web API shape
Server log: $work/server.log
EOF
if [ -t 0 ]; then
	wait
fi
