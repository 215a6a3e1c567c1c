#!/usr/bin/env bash
# The walt tour: a walt server on its embedded SQLite database (in a
# temporary directory) and a simulated testbed (walt-lab) of 12 nodes whose
# agents speak WalT's real node protocol on loopback addresses, powered by a
# simulated PoE switch speaking real SNMP. Some nodes are faulty on purpose.
# Then a virtual node: a real QEMU VM booting the project's image (or, without
# QEMU, a walt-node process under the same supervisor).
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
# expect_status N DESCRIPTION checks the last walt command's exit status.
expect_status() {
	if [ "$status" -eq "$1" ]; then
		$check && echo "   [ok] $2"
	else
		echo "   [UNEXPECTED] $2: exit status $status, want $1" >&2
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
# Virtual nodes: walt-node processes, or QEMU VMs when QEMU and the image
# are there (the image is built from Debian packages in a few seconds).
export PATH="$work/bin:$PATH"
vnodes=process
if command -v qemu-system-x86_64 >/dev/null; then
	mkdir -p "$work/data/images"
	if [ -n "${WALT_VNODE_IMAGE:-}" ] && [ -f "$WALT_VNODE_IMAGE/vmlinuz" ]; then
		ln -s "$WALT_VNODE_IMAGE" "$work/data/images/default"
		vnodes=qemu
	elif scripts/build-vnode-image.sh --data "$work/data" >"$work/image.log" 2>&1; then
		vnodes=qemu
	else
		echo "   (could not build the vnode image, see $work/image.log: virtual nodes run as processes)"
	fi
fi

# die explains why the demo cannot go on, with the end of a log, and exits 1.
die() { # die MESSAGE [LOG]
	echo "demo: $1" >&2
	if [ -n "${2:-}" ] && [ -s "$2" ]; then
		echo "demo: the last lines of $(basename "$2"):" >&2
		tail -20 "$2" | sed 's/^/   /' >&2
	fi
	exit 1
}

port=12345
while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
export WALT_SERVER=http://127.0.0.1:$port WALT_USER=demo
# Every API call but readiness and node reports needs a token: the demo's
# admin account, made on the server's data directory before it starts.
# The token goes to walt and walt-lab as WALT_TOKEN (never as an argument).
WALT_TOKEN=$("$work/bin/walt-server" --data "$work/data" user add demo --admin 2>"$work/user.log") ||
	die "walt-server user add demo failed" "$work/user.log"
export WALT_TOKEN
(umask 077 && printf '%s\n' "$WALT_TOKEN" >"$work/token")
# WALT_KVM_DEVICE lets the tests play a host without /dev/kvm on one that has it.
"$work/bin/walt-server" --data "$work/data" --listen 127.0.0.1:$port --kvm-device "${WALT_KVM_DEVICE:-/dev/kvm}" 2>"$work/server.log" &
server_pid=$!
pids+=($server_pid)
# The server answers its readiness endpoint within a second on every host;
# ten leave room for a loaded machine.
if ! "$work/bin/walt" server status --timeout 10 >"$work/status" 2>&1; then
	kill -0 $server_pid 2>/dev/null || die "walt-server exited at start-up" "$work/server.log"
	die "walt-server did not answer at $WALT_SERVER within 10 s: $(head -1 "$work/status")" "$work/server.log"
fi
faults=node03=refused,node04=hung,node05=ko,node06=not-poe,node07=flaky:3
"$work/bin/walt-lab" --nodes 12 --boot-time 300ms-800ms --faults $faults >"$work/lab.log" 2>&1 &
lab_pid=$!
pids+=($lab_pid)

say "a server on SQLite in $work/data, a lab of 12 nodes on switch1"
echo "   user demo, an admin: walt-server --data $work/data user add demo --admin"
echo "   printed its token once; the demo keeps it in $work/token (mode 0600): $WALT_TOKEN"
echo "   faulty on purpose: node03 refuses connections, node04 never answers,"
echo "   node05 answers KO, node06 is not powered by its switch port, one boot in"
echo "   three of node07 never comes back (until a power cycle)"
# The lab registers its switch; the server learns the ports by an LLDP rescan.
registered=0
for _ in $(seq 200); do
	registered=$("$work/bin/walt" node show --all 2>/dev/null | grep -cE '^node[0-9]+ ' || true)
	[ "$registered" -ge 12 ] && break
	kill -0 $lab_pid 2>/dev/null || die "walt-lab exited at start-up" "$work/lab.log"
	sleep 0.05
done
[ "$registered" -ge 12 ] || die "only $registered of the lab's 12 nodes registered within 10 s" "$work/lab.log"
walt server status
expect "$work/out" '^vnodes: +(qemu, (kvm|tcg) |process)' "the server says how virtual nodes run"
walt node wait --timeout 30 all-nodes
expect_status 0 "walt node wait: every node booted"
walt node show --all
listed=$(grep -cE '^node[0-9]+ ' "$work/out" || true)
if [ "$listed" -eq 12 ]; then
	$check && echo "   [ok] all 12 nodes registered themselves"
else
	echo "   [UNEXPECTED] $listed nodes listed, want 12" >&2
	failures=$((failures + 1))
fi

say "where each node is plugged, as the LLDP rescan found it"
walt device tree
expect "$work/out" 'node01' "the topology shows the nodes on switch1's ports"

say "reboot every node and wait for each to boot again: healthy ones reboot themselves, faulty ones are power-cycled"
walt node reboot --wait --timeout 60 all-nodes
expect "$work/out" '^12 nodes: rebooted OK\.$' "all 12 nodes rebooted (3 of them through PoE)"
expect "$work/out" 'Node node03: booted [0-9.]+m?s after the reboot request\.' "node03's boot time measured"
expect_status 0 "exit status 0: every node rebooted"

say "the same, as JSON for scripts: each node's methods and errors (node03, node04 shown)"
walt node reboot --json node03,node04
expect "$work/out" 'connection refused' "node03's soft reboot failed with connection refused"
expect "$work/out" 'timed out waiting for reply' "node04's soft reboot timed out"
expect "$work/out" 'PoE-reboot' "both were power-cycled"

walt node wait --timeout 30 node03,node04
say "forbid PoE reboots on switch1: failures are explained per node"
walt device config switch1 poe.reboots=false
walt node reboot node01,node03,node05
expect "$work/out" 'Node node01: rebooted OK\.' "node01 still reboots itself"
expect "$work/out" 'Node node03: failed soft-reboot \(connection refused\) and PoE-reboot \(.*forbidden on switch\)' "node03 explained"
expect "$work/out" 'Node node05: failed soft-reboot \(/bin/walt-network-reboot is not executable on image\) and PoE-reboot \(.*forbidden on switch\)' "node05 explained"
expect_status 1 "exit status 1: some nodes were not rebooted"
walt device config switch1 poe.reboots=true

walt node wait --timeout 30 all-nodes
say "--hard skips the soft reboot: a node powered by something else is refused, not cut"
walt node reboot --hard node02,node06
expect "$work/out" 'Node node02: rebooted OK\.' "node02 power-cycled"
expect "$work/out" 'Node node06: failed PoE-reboot \(.*node seems not PoE-powered\)' "node06 left alone"
walt node wait --timeout 30 node02

say "node03's history: every reboot, how it was done, and how long the node took to boot"
walt node history node03
expect "$work/out" 'PoE-reboot' "node03's reboots went through PoE"
expect "$work/out" '[0-9.]+m?s *$' "with the boot time of each"

say "the platform log, as WalT writes it"
walt log show --limit 8
expect "$work/out" 'node node02 is (booted|down)' "boots and reboots are logged"

say "a campaign: every node rebooted 3 times, each boot timed; node07's third boot never comes, and with --quarantine 1 it leaves at its first failure"
walt campaign start --repeat 3 --boot-timeout 30s --quarantine 1 --name demo all-nodes
expect_status 0 "the campaign started"
campaign=$(grep -E '^[0-9]+$' "$work/out" | head -1)
walt campaign follow "$campaign"
expect "$work/out" 'node07 quarantined: 1 failed boots in a row' "node07 quarantined"
expect "$work/out" 'node03 iteration 3: booted in [0-9.]+s \(PoE-reboot after a failed soft reboot\)' "node03 power-cycled at each round"
expect "$work/out" "Campaign $campaign \(demo\) of demo on all-nodes: done, round 3 of 3" "the campaign ran its 3 rounds"
expect_status 1 "exit status 1: a node failed"
walt campaign stats "$campaign" --svg "$work/campaign.svg"
expect "$work/out" '^node01 +rpi-b +3/3 ' "node01: 3 boots out of 3"
expect "$work/out" '^node07 .*quarantined' "node07 shown quarantined"
expect "$work/out" "Plots written to $work/campaign.svg" "the plots are written"
[ -s "$work/campaign.svg" ] || { echo "   [UNEXPECTED] no plot in $work/campaign.svg" >&2; failures=$((failures + 1)); }
walt node clear-quarantine node07
expect "$work/out" 'Node node07 is out of quarantine' "node07's quarantine lifted"
walt node reboot --hard --wait --timeout 60 node07
expect "$work/out" 'Node node07: booted [0-9.]+m?s after the reboot request\.' "a power cycle revives node07"

say "a virtual node ($vnodes): created, booted, rebooted soft and hard, removed"
walt node create vnode1 ram=256M
expect_status 0 "vnode1 created"
walt node wait --timeout 120 vnode1
expect_status 0 "vnode1 booted"
if [ $vnodes = qemu ]; then
	walt node show --json
	expect "$work/out" '"accel": *"(kvm|tcg)"' "vnode1's VM says which accelerator it runs under"
fi
walt node reboot --wait --timeout 120 vnode1
expect "$work/out" 'Node vnode1: booted [0-9.]+m?s after the reboot request\.' "vnode1 rebooted itself (the guest's kernel restarted)"
walt node reboot --hard --wait --timeout 120 vnode1
expect "$work/out" 'Node vnode1: booted [0-9.]+m?s after the reboot request\.' "vnode1's machine killed and started again"
walt node history --limit 2 vnode1
expect "$work/out" 'vnode hard-reboot' "the hard reboot killed and restarted the machine"
walt node remove vnode1
expect_status 0 "vnode1 removed, its machine stopped"

say "an unknown node: nothing is rebooted"
walt node reboot node02,nodeXX
expect "$work/out" 'nodeXX' "the culprit is named"
[ $status -eq 2 ] || [ $status -eq 1 ] || { echo "   [UNEXPECTED] exit status $status" >&2; failures=$((failures + 1)); }

# A surprise fails the demo in both modes: a new user must not take a
# broken run for a working one.
[ $failures -eq 0 ] || die "$failures unexpected outcomes (the [UNEXPECTED] lines above)" "$work/server.log"
echo
echo "demo: every outcome as expected"
$check && exit 0

say "your turn"
cat <<EOF
The server and the lab keep running until Ctrl-C. The dashboard: $WALT_SERVER/ (log in with the token in $work/token)
In another shell:
   export WALT_SERVER=$WALT_SERVER WALT_USER=demo
   alias walt=$work/bin/walt
   walt login <$work/token           # stores the token in ~/.config/walt/tokens (0600)
   walt node show --all
   walt node reboot --wait node03     # falls back to PoE, then waits for the new boot
   walt node reboot --hard all-nodes  # one SNMP SET off and one on for the switch
   walt node history node04           # every reboot, method, errors, boot time
   walt node reboot --repeat 5 all-nodes   # a campaign: 5 rounds, followed live
   walt campaign stats $campaign --png /tmp/boots.png   # boot time per node and per round
   walt campaign compare 1 2          # did booting change between two campaigns?
   walt log show --follow             # the platform log as it happens
   walt device port-config switch1    # live PoE state of each port, over SNMP
   walt node create vm1 && walt node wait vm1 && walt node console vm1
   walt device config switch1         # the switch's settings (community masked)
   curl -s -H "Authorization: Bearer \$(cat $work/token)" \$WALT_SERVER/api/v1/nodes  # WalT's web API shape
Server log: $work/server.log
EOF
if [ -t 0 ]; then
	wait
fi
