package main

import (
	"bufio"
	"context"
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
	p := &serverProc{log: &testutil.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "--data", dataDir, "--listen", "127.63.0.1:0")
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

// A server killed with SIGKILL while a hard reboot holds a port off leaves
// the port off; the next server start switches it on and logs it.
func TestKilledDuringPowerCycleRestoresPortAtRestart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds walt-server")
	}
	bin := buildServer(t)
	dataDir := t.TempDir()
	events := make(chan snmpswitch.PowerEvent, 16)
	sim, err := snmpswitch.Start(snmpswitch.Config{Name: "sw1", Addr: "127.63.255.1:0", Ports: 4, Community: "rw-crash",
		OnPower: func(ev snmpswitch.PowerEvent) { events <- ev }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	_, snmpPort, _ := net.SplitHostPort(sim.Addr())

	first := startProc(t, bin, dataDir)
	c, err := client.New("http://"+first.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := c.AddDevice(ctx, api.AddDevice{Name: "sw1", IP: "127.63.255.1", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetConfig(ctx, api.ConfigRequest{Set: "sw1", Settings: []string{"snmp.version=2", "snmp.community=rw-crash",
		"snmp.port=" + snmpPort, "lldp.explore=true", "poe.reboots=true", "poe.delay=1m"}}); err != nil {
		t.Fatal(err)
	}
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
	log := second.log.String()
	if !strings.Contains(log, `msg="PoE restored" switch=sw1`) || !strings.Contains(log, "port=2") || !strings.Contains(log, "reason=hard-reboot") {
		t.Errorf("restart log does not report port 2 restored:\n%s", log)
	}
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
