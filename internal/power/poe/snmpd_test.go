package poe

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/testutil"
)

// poeScript implements a writable pethPsePortTable (group 1, ports 1-4) for
// snmpd's pass_persist protocol, in POSIX sh and awk. Admin states live in
// files next to the script; every SET is appended to sets.log. A port with
// a file stuck.<port> keeps delivering power when disabled (a switch that
// accepts an off without cutting).
const poeScript = `#!/bin/sh
dir=$(dirname "$0")
base=.1.3.6.1.2.1.105.1.1.1
admin() { cat "$dir/admin.$1" 2>/dev/null || echo 1; }
value() {
	case "$1" in
	$base.3.1.[1-4]) admin "${1##*.}" ;;
	$base.6.1.[1-4]) if [ "$(admin "${1##*.}")" = 1 ] || [ -e "$dir/stuck.${1##*.}" ]; then echo 3; else echo 1; fi ;;
	esac
}
# oid_gt A B: true if OID A sorts after OID B.
oid_gt() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		n = split(a, x, "."); m = split(b, y, ".")
		for (i = 2; i <= n && i <= m; i++) if (x[i] + 0 != y[i] + 0) exit !(x[i] + 0 > y[i] + 0)
		exit !(n > m)
	}'
}
while read -r cmd; do
	case "$cmd" in
	PING) echo PONG ;;
	get)
		read -r oid
		v=$(value "$oid")
		if [ -n "$v" ]; then printf '%s\ninteger\n%s\n' "$oid" "$v"; else echo NONE; fi ;;
	getnext)
		read -r oid
		found=NONE
		for c in 3 6; do for p in 1 2 3 4; do
			o=$base.$c.1.$p
			if [ "$found" = NONE ] && oid_gt "$o" "$oid"; then found=$o; fi
		done; done
		if [ "$found" = NONE ]; then echo NONE; else printf '%s\ninteger\n%s\n' "$found" "$(value "$found")"; fi ;;
	set)
		read -r oid
		read -r typ val
		case "$oid" in
		$base.3.1.[1-4])
			if [ "$typ" != integer ]; then echo wrong-type
			elif [ "$val" != 1 ] && [ "$val" != 2 ]; then echo wrong-value
			else echo "$val" > "$dir/admin.${oid##*.}"; echo "$oid $val" >> "$dir/sets.log"; echo DONE
			fi ;;
		*) echo not-writable ;;
		esac ;;
	"") ;; # snmpd sends a blank line after each SET
	esac
done
`

// startSnmpd runs net-snmp's snmpd in the foreground on a loopback port,
// with the PoE script, and returns its address and the script's directory.
func startSnmpd(t *testing.T, rw, ro string) (addr, dir string) {
	t.Helper()
	bin, err := exec.LookPath("snmpd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/snmpd", "/usr/local/sbin/snmpd"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("snmpd is not installed (Debian package snmpd; scripts/install-deps.sh installs it)")
		}
		t.Skip("snmpd is not installed: apt-get install snmpd snmp")
	}
	dir = t.TempDir()
	script := filepath.Join(dir, "poe.sh")
	if err := os.WriteFile(script, []byte(poeScript), 0o755); err != nil {
		t.Fatal(err)
	}
	// A free UDP port: bind :0, note it, release it for snmpd.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = pc.LocalAddr().String()
	pc.Close()
	conf := filepath.Join(dir, "snmpd.conf")
	confText := fmt.Sprintf(`agentaddress udp:%s
rwcommunity %s 127.0.0.0/8
rocommunity %s 127.0.0.0/8
pass_persist .1.3.6.1.2.1.105.1.1.1 /bin/sh %s
`, addr, rw, ro, script)
	if err := os.WriteFile(conf, []byte(confText), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", "-Lo", "-C", "-c", conf, "-M", dir, "-m", "", "-p", filepath.Join(dir, "snmpd.pid"))
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+dir, "MIBS=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 100)
	go func() {
		defer close(logs)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case logs <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		for l := range logs {
			t.Logf("snmpd: %s", l)
		}
	})
	// Ready when it answers a GET (each attempt waits up to 200 ms).
	host, port, _ := splitAddress(addr)
	g := &gosnmp.GoSNMP{Target: host, Port: port, Community: ro, Version: gosnmp.Version2c, Timeout: 200 * time.Millisecond}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	defer g.Conn.Close()
	testutil.EventuallyNil(t, 10*time.Second, "snmpd on "+addr+" to answer", func() error {
		_, err := g.Get([]string{".1.3.6.1.2.1.1.5.0"})
		return err
	})
	return addr, dir
}

func TestPowerCycleOnNetSNMP(t *testing.T) {
	t.Parallel()
	const rw, ro = "rw-s3cret", "ro-s3cret"
	addr, dir := startSnmpd(t, rw, ro)
	for _, version := range []Version{V1, V2c} {
		_ = os.Remove(filepath.Join(dir, "sets.log"))
		r := newRig(t, DefaultConfig())
		r.dir.put("snmpd", SwitchConfig{
			Name: "snmpd", Address: addr, Version: version, Community: NewCommunity(rw), Reboots: true,
			Delay: 10 * time.Millisecond,
			// The machine's interfaces are not a switch's: map explicitly.
			PortMap: map[int]PoEIndex{1: {1, 1}, 2: {1, 2}, 3: {1, 3}, 4: {1, 4}},
		})
		errs := r.driver.Cycle(t.Context(), []power.Outlet{{Switch: "snmpd", Port: 2}, {Switch: "snmpd", Port: 4}})
		for i, err := range errs {
			if err != nil {
				t.Errorf("v%s: cycle %d: %v", version, i, err)
			}
		}
		log, _ := os.ReadFile(filepath.Join(dir, "sets.log"))
		want := strings.Join([]string{
			".1.3.6.1.2.1.105.1.1.1.3.1.2 2", ".1.3.6.1.2.1.105.1.1.1.3.1.4 2",
			".1.3.6.1.2.1.105.1.1.1.3.1.2 1", ".1.3.6.1.2.1.105.1.1.1.3.1.4 1", ""}, "\n")
		if string(log) != want {
			t.Errorf("v%s: SETs seen by the script:\n%s\nwant:\n%s", version, log, want)
		}
	}

	// A read-only community: snmpd refuses, the port stays on.
	r := newRig(t, DefaultConfig())
	r.dir.put("snmpd", SwitchConfig{Name: "snmpd", Address: addr, Version: V2c, Community: NewCommunity(ro), Reboots: true,
		PortMap: map[int]PoEIndex{1: {1, 1}}})
	err := r.driver.Cycle(context.Background(), []power.Outlet{{Switch: "snmpd", Port: 1}})[0]
	if err == nil || !strings.Contains(err.Error(), "port 1 of switch snmpd") || strings.Contains(err.Error(), ro) {
		t.Errorf("cycle with a read-only community = %v, want an error naming the port, without the community", err)
	}
	t.Logf("read-only community: %v", err)
}

// TestCycleCutsOnNetSNMP: a power-cycle reads each port's detection status
// before switching it on again: a port that stopped delivering power was
// cut (verified); one still delivering was not, and the result says so.
func TestCycleCutsOnNetSNMP(t *testing.T) {
	t.Parallel()
	const rw = "rw-s3cret"
	addr, dir := startSnmpd(t, rw, "ro-s3cret")
	if err := os.WriteFile(filepath.Join(dir, "stuck.3"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, DefaultConfig())
	r.dir.put("snmpd", SwitchConfig{Name: "snmpd", Address: addr, Version: V2c, Community: NewCommunity(rw), Reboots: true,
		Delay: 10 * time.Millisecond, PortMap: map[int]PoEIndex{2: {1, 2}, 3: {1, 3}}})
	cuts, errs := r.driver.CycleCuts(t.Context(), []power.Outlet{{Switch: "snmpd", Port: 2}, {Switch: "snmpd", Port: 3}})
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if !cuts[0].Verified || !strings.Contains(cuts[0].Detail, "not delivering power") {
		t.Errorf("port 2 cut = %+v, want verified", cuts[0])
	}
	if cuts[1].Verified || !strings.Contains(cuts[1].Detail, "still read PoE port 1.3 delivering power") {
		t.Errorf("port 3 cut = %+v, want not verified: still delivering", cuts[1])
	}
}
