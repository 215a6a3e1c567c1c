#!/usr/bin/env bash
# A first look at walt: starts the node agent, walt-node, on a loopback
# address and talks WalT's node protocol to it, as the server does.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

scripts/install-deps.sh

work=$(mktemp -d)
trap 'kill $agent 2>/dev/null || true; rm -rf "$work"' EXIT
echo "== building walt-node (static, no cgo)"
CGO_ENABLED=0 go build -o "$work/walt-node" ./cmd/walt-node
ls -lh "$work/walt-node" | awk '{print "   size: " $5}'

# A node image with a kexec-like reboot hook that declines when the server
# says kexec.allow=false, as WalT's default PC images do.
mkdir -p "$work/image/bin"
cat >"$work/image/bin/walt-network-reboot" <<'HOOK'
#!/bin/sh
[ "$kexec_allow" = false ] && exit 3
exit 0
HOOK
chmod +x "$work/image/bin/walt-network-reboot"

addr=127.0.0.2
"$work/walt-node" --listen $addr:12346 --root "$work/image" --boot-mode network --virtual false \
	--reboot-action "log:$work/reboots.log" --log-level error &
agent=$!

# ask sends one request in single mode and prints the reply line.
ask() {
	exec 3<>/dev/tcp/$addr/12346
	printf 'MODE single\n%s\n' "$1" >&3
	local reply
	IFS= read -r -t 5 reply <&3 || reply="(no reply)"
	exec 3<&- 3>&-
	printf '   %-28s -> %s\n' "$1" "$reply"
}
for _ in $(seq 50); do (exec 3<>/dev/tcp/$addr/12346) 2>/dev/null && break; sleep 0.1; done

echo "== talking to the agent on $addr:12346"
ask PING
ask "BLINK 1"
# wait_reboots N waits until N reboot procedures have ended.
wait_reboots() {
	for _ in $(seq 100); do
		[ "$(grep -c -x force "$work/reboots.log" 2>/dev/null)" = "$1" ] && return
		sleep 0.05
	done
}
ask "REBOOT"
wait_reboots 1
ask "REBOOT kexec.allow=false"
wait_reboots 2
ask "REBOOT not-a-setting"
echo "== reboot procedures the agent chose (log action: nothing really rebooted)"
sed 's/^/   /' "$work/reboots.log"
echo
echo "The agent answers OK before rebooting and runs the image's hook; a hook that"
echo "declines (exit 3) is followed at once by the plain forced reboot."
echo "Next: scripts/test.sh runs the whole test suite; docs/node-agent.md explains the agent."
