package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/testutil"
)

// The crash test uses 127.63.0.0/16.

// buildServer compiles walt-server into a temporary directory.
func buildServer(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go") // go test puts its own go first in PATH
	if err != nil {
		t.Fatalf("find the go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "walt-server")
	cmd := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build walt-server: %v\n%s", err, out)
	}
	return bin
}

// serverProc is a walt-server process.
type serverProc struct {
	cmd  *exec.Cmd
	log  *testutil.Buffer
	addr string
	done chan struct{}
}

var listening = regexp.MustCompile(`msg="serving API" addr=(\S+)`)

// startProc starts the binary on dataDir, listening on a free port of
// 127.63.0.1, and waits until it serves the API.
func startProc(t *testing.T, bin, dataDir string) *serverProc {
	t.Helper()
	return startProcAt(t, bin, dataDir, "127.63.0.1:0")
}

// startProcAt is startProc listening on addr.
func startProcAt(t *testing.T, bin, dataDir, addr string) *serverProc {
	t.Helper()
	p := &serverProc{log: &testutil.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "--data", dataDir, "--listen", addr)
	p.cmd.Env = append(os.Environ(), "WALT_DB=")
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.log.Write([]byte(line + "\n"))
			if m := listening.FindStringSubmatch(line); m != nil {
				addrc <- m[1]
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		t.Logf("walt-server log:\n%s", p.log)
	})
	select {
	case p.addr = <-addrc:
	case <-p.done:
		t.Fatalf("walt-server exited at start-up:\n%s", p.log)
	case <-time.After(30 * time.Second):
		t.Fatalf("walt-server never served its API:\n%s", p.log)
	}
	return p
}

// crashLab builds walt-server, starts a simulated PoE switch named sw on
// 127.63.255.<octet> with poe.delay=1m (a power-cycle holds its ports off
// long enough to kill the server then) and a first server on dataDir that
// knows the switch. onPower hears of every port change.
func crashLab(t *testing.T, sw string, octet int, dataDir string, onPower func(snmpswitch.PowerEvent)) (bin string, sim *snmpswitch.Switch, first *serverProc, c *client.Client) {
	t.Helper()
	bin = buildServer(t)
	ip := fmt.Sprintf("127.63.255.%d", octet)
	sim, err := snmpswitch.Start(snmpswitch.Config{Name: sw, Addr: ip + ":0", Ports: 4, Community: "rw-crash", OnPower: onPower})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	_, snmpPort, _ := net.SplitHostPort(sim.Addr())
	token := userToken(t, "test", "--data", dataDir)
	first = startProc(t, bin, dataDir)
	if c, err = client.New("http://"+first.addr, nil); err != nil {
		t.Fatal(err)
	}
	c = c.WithToken(token)
	ctx := t.Context()
	if _, err := c.AddDevice(ctx, api.AddDevice{Name: sw, IP: ip, Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetConfig(ctx, api.ConfigRequest{Set: sw, Settings: []string{"snmp.version=2", "snmp.community=rw-crash",
		"snmp.port=" + snmpPort, "lldp.explore=true", "poe.reboots=true", "poe.delay=1m"}}); err != nil {
		t.Fatal(err)
	}
	return bin, sim, first, c
}

// A server killed with SIGKILL while a hard reboot holds a port off leaves
// the port off; the next server start switches it on and logs it.
func TestKilledDuringPowerCycleRestoresPortAtRestart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds walt-server")
	}
	dataDir := t.TempDir()
	events := make(chan snmpswitch.PowerEvent, 16)
	bin, sim, first, c := crashLab(t, "sw1", 1, dataDir, func(ev snmpswitch.PowerEvent) { events <- ev })
	ctx := t.Context()
	if _, err := c.ReportNode(ctx, api.NodeReport{MAC: "02:63:00:00:00:02", IP: "127.63.0.2", Name: "n1", Model: "rpi-b"}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetLink(ctx, api.Link{Node: "n1", Switch: "sw1", Port: 2}); err != nil {
		t.Fatal(err)
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.Reboot(rctx, api.RebootRequest{Set: "n1", Hard: true, Requester: "test"}, nil) // ends with the server
	select {
	case ev := <-events:
		if ev.IfIndex != 2 || ev.On {
			t.Fatalf("first power event %+v, want port 2 off", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("port 2 never switched off:\n%s", first.log)
	}
	if err := first.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-first.done
	if on, _, _ := sim.Port(2); on {
		t.Fatal("port 2 is on after the kill: the test did not kill the server during the off period")
	}

	second := startProc(t, bin, dataDir)
	// The restore runs in the background while the API serves; the
	// readiness answer lists it until it is done.
	c2, err := client.New("http://"+second.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "the restarted server to restore PoE", func() bool {
		h, err := c2.Health(ctx)
		return err == nil && !slices.Contains(h.Starting, "restore PoE")
	})
	if on, _, _ := sim.Port(2); !on {
		t.Errorf("port 2 still off once the restarted server has restored PoE")
	}
	// The log comes through a pipe read by another goroutine: it may lag
	// behind what the server has done.
	restored := func() bool {
		log := second.log.String()
		return strings.Contains(log, `msg="PoE restored" switch=sw1`) && strings.Contains(log, "port=2") && strings.Contains(log, "reason=hard-reboot")
	}
	testutil.Eventually(t, 10*time.Second, "the restart log to report port 2 restored", restored)
	log := second.log.String()
	if strings.Contains(first.log.String()+log, "rw-crash") {
		t.Error("the SNMP community appears in the server's log")
	}
	select {
	case ev := <-events:
		if ev.IfIndex != 2 || !ev.On {
			t.Errorf("power event after restart %+v, want port 2 on", ev)
		}
	default:
		t.Error("no power event for port 2 after the restart")
	}
}

// A server killed with SIGKILL during a hard-reboot batch leaves a history
// row for every node of it: the rows whose outcome was known then say so
// (error code included), the others say interrupted after the restart.
func TestKilledDuringHardBatchLeavesEveryNodeInHistory(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds walt-server")
	}
	dataDir := t.TempDir()
	off := make(chan snmpswitch.PowerEvent, 16)
	bin, _, first, c := crashLab(t, "sw2", 2, dataDir, func(ev snmpswitch.PowerEvent) {
		if !ev.On {
			off <- ev
		}
	})
	ctx := t.Context()
	linked := []string{"p1", "p2", "p3"}
	for i, name := range append(linked, "lone") {
		mac := fmt.Sprintf("02:63:00:00:01:%02x", i+1)
		if _, err := c.ReportNode(ctx, api.NodeReport{MAC: mac, IP: fmt.Sprintf("127.63.1.%d", i+1), Name: name, Model: "rpi-b"}); err != nil {
			t.Fatal(err)
		}
		if name != "lone" { // lone has no switch port: its hard reboot fails at once
			if err := c.SetLink(ctx, api.Link{Node: name, Switch: "sw2", Port: i + 1}); err != nil {
				t.Fatal(err)
			}
		}
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lone := make(chan api.NodeResult, 1)
	go c.Reboot(rctx, api.RebootRequest{Set: "p1,p2,p3,lone", Hard: true, Requester: "test"}, func(ev api.RebootEvent) {
		if ev.Type == api.EventNode && ev.Node.Node == "lone" {
			lone <- *ev.Node
		}
	}) // ends with the server
	var lr api.NodeResult
	select {
	case lr = <-lone:
	case <-time.After(30 * time.Second):
		t.Fatalf("no result for lone:\n%s", first.log)
	}
	select {
	case <-off:
	case <-time.After(30 * time.Second):
		t.Fatalf("the ports never switched off:\n%s", first.log)
	}
	if err := first.cmd.Process.Kill(); err != nil { // SIGKILL, the power-cycle held off by poe.delay
		t.Fatal(err)
	}
	<-first.done

	second := startProc(t, bin, dataDir)
	c2, err := client.New("http://"+second.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	c2 = c2.WithToken(userToken(t, "test", "--data", dataDir))
	list, err := c2.History(ctx, "p1,p2,p3,lone", "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]api.RebootRecord{}
	for _, r := range list.Reboots {
		if _, dup := got[r.Node]; dup {
			t.Errorf("two history rows for %s", r.Node)
		}
		got[r.Node] = r
	}
	for _, name := range linked {
		r, ok := got[name]
		if !ok {
			t.Errorf("no history row for %s after the kill", name)
			continue
		}
		if r.State != api.RebootInterrupted || r.OK || r.ID == "" || r.Batch != lr.Batch || r.Requester != "test" {
			t.Errorf("%s's row %+v: want state interrupted, not OK, in lone's batch %q, requester test", name, r, lr.Batch)
		}
	}
	r, ok := got["lone"]
	if !ok {
		t.Fatalf("no history row for lone after the kill; rows: %+v", list.Reboots)
	}
	// The row is what the reboot stream said, error code included.
	if r.State != api.RebootDone || r.OK || r.ID != lr.ID || len(r.Attempts) != 1 || r.Attempts[0].Code == "" ||
		r.Attempts[0].Code != lr.Attempts[0].Code || r.Attempts[0].Error != lr.Attempts[0].Error {
		t.Errorf("lone's row %+v, want done, failed, as streamed: %+v", r, lr)
	}
	if log := second.log.String(); !strings.Contains(log, "reboots interrupted by the last stop") || !strings.Contains(log, "reboots=3") {
		t.Errorf("restart log does not report the 3 interrupted reboots:\n%s", log)
	}
}
