package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/power/poe"
	"github.com/walt-testbed/walt/internal/testutil"
)

// Loopback blocks of this package's tests; other packages use others.
const (
	octetBoot   = 201
	octetFaults = 202
	octetPoE    = 203
)

// bootLog collects boot reports.
type bootLog struct {
	mu      sync.Mutex
	byNode  map[string][]Boot
	changed chan struct{} // closed and replaced on each report
}

func (b *bootLog) add(bt Boot) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.byNode[bt.Node.Name()] = append(b.byNode[bt.Node.Name()], bt)
	close(b.changed)
	b.changed = make(chan struct{})
}

// await waits for the n-th boot report (from 1) of a node and returns it.
func (b *bootLog) await(t *testing.T, node string, n int) Boot {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		b.mu.Lock()
		got, changed := b.byNode[node], b.changed
		b.mu.Unlock()
		if len(got) >= n {
			return got[n-1]
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no boot report #%d from %s", n, node)
		}
	}
}

func startLab(t *testing.T, cfg Config) (*Lab, *bootLog) {
	t.Helper()
	log := &bootLog{byNode: map[string][]Boot{}, changed: make(chan struct{})}
	cfg.OnBoot = log.add
	if cfg.BootTime == (BootTime{}) {
		cfg.BootTime = BootTime{Min: 10 * time.Millisecond, Max: 30 * time.Millisecond}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	l, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l, log
}

var rq = &netservice.Requester{ConnectTimeout: 2 * time.Second, ReplyTimeout: 300 * time.Millisecond}

func request(ctx context.Context, n *Node, verb string) (string, error) {
	return rq.Do(ctx, n.Addr(), netservice.Request{Verb: verb})
}

func TestNodeRebootsWithNewBootID(t *testing.T) {
	t.Parallel()
	l, bootCh := startLab(t, Config{Nodes: 3, Octet: octetBoot})
	n := l.Node("node02")
	first := bootCh.await(t, "node02", 1)
	if line, err := request(t.Context(), n, netservice.VerbPing); err != nil || line != "OK" {
		t.Fatalf("PING %s = %q, %v", n.Name(), line, err)
	}
	if line, err := request(t.Context(), n, netservice.VerbReboot); err != nil || line != "OK" {
		t.Fatalf("REBOOT %s = %q, %v", n.Name(), line, err)
	}
	second := bootCh.await(t, "node02", 2)
	if second.BootID == first.BootID || second.BootID != n.BootID() || n.Boots() != 2 {
		t.Errorf("after reboot: boot ids %s then %s (node says %s), %d boots; want a new id and 2 boots",
			first.BootID, second.BootID, n.BootID(), n.Boots())
	}
	if line, err := request(t.Context(), n, netservice.VerbPing); err != nil || line != "OK" {
		t.Errorf("PING after reboot = %q, %v", line, err)
	}
}

func TestNodeFaults(t *testing.T) {
	t.Parallel()
	faults := map[string]Fault{"node01": Refused, "node02": Hung, "node03": KO, "node05": NeverBoots}
	l, bootCh := startLab(t, Config{Nodes: 5, Octet: octetFaults, Faults: faults})
	for _, name := range []string{"node01", "node02", "node03", "node04", "node05"} {
		bootCh.await(t, name, 1)
	}
	tests := []struct {
		node string
		want error
	}{
		{"node01", netservice.ErrRefused},
		{"node02", netservice.ErrReplyTimeout},
		{"node03", netservice.ErrKO},
		{"node04", nil},
		{"node05", nil},
	}
	for _, tt := range tests {
		_, err := request(t.Context(), l.Node(tt.node), netservice.VerbReboot)
		if !errors.Is(err, tt.want) {
			t.Errorf("REBOOT %s (%s) = %v, want %v", tt.node, faults[tt.node], err, tt.want)
		}
	}
	// node05 acknowledged, went down, and never comes back; node04 does.
	bootCh.await(t, "node04", 2)
	if st := l.Node("node05").State(); st != Booting {
		t.Errorf("never-boots node is %s after its reboot, want booting forever", st)
	}
	if _, err := request(t.Context(), l.Node("node05"), netservice.VerbPing); !errors.Is(err, netservice.ErrRefused) {
		t.Errorf("PING never-boots node = %v, want connection refused", err)
	}
}

type directory map[string]poe.SwitchConfig

func (d directory) Lookup(ctx context.Context, key string) (poe.SwitchConfig, error) {
	sw, ok := d[key]
	if !ok {
		return sw, fmt.Errorf("no switch %q", key)
	}
	return sw, nil
}

// TestPowerCycleThroughSwitch drives the lab's switch with the real PoE
// driver: the node goes dark when its port is off and boots again, with a
// new boot id, when it is back on; a node powered by something else is
// refused and left alone.
func TestPowerCycleThroughSwitch(t *testing.T) {
	t.Parallel()
	l, bootCh := startLab(t, Config{Nodes: 4, Octet: octetPoE, Faults: map[string]Fault{"node04": NotPoE}})
	sw := l.Switches[0]
	dir := directory{sw.MAC: {Name: sw.Name(), Address: sw.Addr(), Version: poe.V2c,
		Community: poe.NewCommunity("private"), Reboots: true, Delay: 100 * time.Millisecond}}
	cfg := poe.DefaultConfig()
	cfg.Gather = 0
	d, err := poe.New(cfg, dir, &power.MemJournal{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"node02", "node04"} {
		bootCh.await(t, name, 1)
	}
	before := l.Node("node02").BootID()

	cycled := make(chan []error, 1)
	go func() {
		cycled <- d.Cycle(t.Context(), []power.Outlet{{Switch: sw.MAC, Port: 2}, {Switch: sw.MAC, Port: 4}})
	}()
	// node02 goes dark during the off period (poe.delay, 100ms).
	testutil.Eventually(t, 10*time.Second, "node02 to lose power during its power-cycle", func() bool {
		return l.Node("node02").State() == Off
	})
	errs := <-cycled
	if errs[0] != nil {
		t.Fatalf("power-cycle of node02's port: %v", errs[0])
	}
	if !errors.Is(errs[1], power.ErrNotPowered) {
		t.Errorf("power-cycle of not-PoE node04's port = %v, want ErrNotPowered", errs[1])
	}
	after := bootCh.await(t, "node02", 2)
	if after.BootID == before {
		t.Errorf("node02 kept boot id %s across a power-cycle", before)
	}
	if n4 := l.Node("node04"); n4.Boots() != 1 || n4.State() != Up {
		t.Errorf("not-PoE node04: %d boots, %s; want untouched (1 boot, up)", n4.Boots(), n4.State())
	}
}

func TestParsers(t *testing.T) {
	t.Parallel()
	if bt, err := ParseBootTime("1s-3s"); err != nil || bt != (BootTime{Min: time.Second, Max: 3 * time.Second}) {
		t.Errorf("ParseBootTime(1s-3s) = %v, %v", bt, err)
	}
	for _, bad := range []string{"", "fast", "3s-1s", "-1s", "1s-"} {
		if _, err := ParseBootTime(bad); err == nil {
			t.Errorf("ParseBootTime(%q) accepted", bad)
		}
	}
	nodes, switches, err := ParseFaults("node03=refused,switch2=unreachable,node07=hung")
	if err != nil || nodes["node03"] != Refused || nodes["node07"] != Hung || switches["switch2"] != Unreachable {
		t.Errorf("ParseFaults = %v, %v, %v", nodes, switches, err)
	}
	for _, bad := range []string{"node03", "node03=dead", "switch1=hung", "=ko"} {
		if _, _, err := ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%q) accepted", bad)
		}
	}
	if _, err := Start(Config{Nodes: 2, Faults: map[string]Fault{"node09": KO}}); err == nil {
		t.Error("Start accepted a fault for an unknown node")
	}
}
