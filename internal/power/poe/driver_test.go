package poe

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/power"
)

// directory is a Directory over a map.
type directory struct {
	mu       sync.Mutex
	switches map[string]SwitchConfig
}

func (d *directory) Lookup(_ context.Context, key string) (SwitchConfig, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sw, ok := d.switches[key]
	if !ok {
		return SwitchConfig{}, fmt.Errorf("no switch %q", key)
	}
	return sw, nil
}

func (d *directory) put(key string, sw SwitchConfig) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.switches == nil {
		d.switches = map[string]SwitchConfig{}
	}
	d.switches[key] = sw
}

// rig is a driver with simulated switches.
type rig struct {
	dir      *directory
	journal  *power.MemJournal
	driver   *Driver
	switches map[string]*snmpswitch.Switch
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	r := &rig{dir: &directory{}, journal: &power.MemJournal{}, switches: map[string]*snmpswitch.Switch{}}
	d, err := New(cfg, r.dir, r.journal, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	r.driver = d
	return r
}

// startSim starts a simulated switch named key, with read-write community
// "rw-s3cret" unless cfg says otherwise. Tests using synctest start switches
// outside the bubble: the agent's goroutine waits on network I/O, which
// would keep the bubble's clock from advancing.
func startSim(t *testing.T, key string, cfg snmpswitch.Config) *snmpswitch.Switch {
	t.Helper()
	cfg.Name = key
	if cfg.Community == "" {
		cfg.Community = "rw-s3cret"
	}
	s, err := snmpswitch.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// register puts the simulated switch in the directory under its name, with
// poe.reboots on, SNMP v2c and community "rw-s3cret" unless sw says
// otherwise.
func (r *rig) register(s *snmpswitch.Switch, sw SwitchConfig) {
	sw.Name = s.Name()
	sw.Address = s.Addr()
	if sw.Version == 0 {
		sw.Version = V2c
	}
	if sw.Community.IsZero() {
		sw.Community = NewCommunity("rw-s3cret")
	}
	sw.Reboots = true
	r.dir.put(s.Name(), sw)
	r.switches[s.Name()] = s
}

func fastConfig() Config {
	c := DefaultConfig()
	c.Timeout = 200 * time.Millisecond
	c.Retries = 1
	return c
}

func outlets(sw string, ports ...int) []power.Outlet {
	var o []power.Outlet
	for _, p := range ports {
		o = append(o, power.Outlet{Switch: sw, Port: p})
	}
	return o
}

// powerLog records the power events of simulated switches.
type powerLog struct {
	mu     sync.Mutex
	events []snmpswitch.PowerEvent
}

func (l *powerLog) record(e snmpswitch.PowerEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *powerLog) of(sw string, port int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, e := range l.events {
		if e.Switch == sw && e.IfIndex == port {
			b.WriteString(map[bool]string{true: "on ", false: "off "}[e.On])
		}
	}
	return strings.TrimSpace(b.String())
}

func TestCycleEachVariantOneSetPerSwitchPerPhase(t *testing.T) {
	t.Parallel()
	for _, v := range []snmpswitch.Variant{snmpswitch.Standard, snmpswitch.Netgear, snmpswitch.TPLink} {
		for _, version := range []Version{V1, V2c} {
			t.Run(fmt.Sprintf("%s-v%s", v, version), func(t *testing.T) {
				t.Parallel()
				var log powerLog
				sim := startSim(t, "sw-a", snmpswitch.Config{Variant: v, OnPower: log.record})
				synctest.Test(t, func(t *testing.T) {
					r := newRig(t, fastConfig())
					r.register(sim, SwitchConfig{Version: version})
					ports := []int{1, 2, 7, 30, 48}
					start := time.Now()
					errs := r.driver.Cycle(t.Context(), outlets("sw-a", ports...))
					for i, err := range errs {
						if err != nil {
							t.Errorf("cycle port %d: %v", ports[i], err)
						}
					}
					if got := time.Since(start); got < DefaultDelay {
						t.Errorf("cycle took %s, want at least poe.delay %s", got, DefaultDelay)
					}
					for _, p := range ports {
						if got := log.of("sw-a", p); got != "off on" {
							t.Errorf("port %d power events = %q, want \"off on\"", p, got)
						}
					}
					if got := log.of("sw-a", 3); got != "" {
						t.Errorf("port 3 (not asked) power events = %q, want none", got)
					}
					if st := sim.Stats(); st.Sets != 2 || st.SetVarbinds != 2*len(ports) {
						t.Errorf("SET PDUs = %d (%d varbinds), want 2 (%d)", st.Sets, st.SetVarbinds, 2*len(ports))
					}
					if recs, _ := r.journal.ListOff(t.Context()); len(recs) != 0 {
						t.Errorf("journal after cycle = %v, want empty", recs)
					}
				})
			})
		}
	}
}
