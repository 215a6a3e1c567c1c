// Package bmcreboot is the server's hard-reboot methods for nodes whose
// power.method is ipmi, redfish or command, beside poereboot's for PoE:
// each reads the node's power settings from the store and power-cycles it
// through its driver (internal/power/ipmi, redfish, command), reporting
// whether the cut was read back (reboot.CutReporter).
package bmcreboot

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/power/command"
	"github.com/walt-testbed/walt/internal/power/ipmi"
	"github.com/walt-testbed/walt/internal/power/redfish"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// Drivers are the drivers the methods use; New fills the nil ones with
// defaults.
type Drivers struct {
	IPMI    *ipmi.Driver
	Redfish *redfish.Driver
	Command *command.Driver
}

// New returns the methods, keyed by their power.method value, for
// reboot.Config.Methods.
func New(st store.Store, d Drivers, log *slog.Logger) (map[string]reboot.HardRebooter, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var err error
	if d.IPMI == nil {
		if d.IPMI, err = ipmi.New(ipmi.DefaultConfig(), log.With("driver", "ipmi")); err != nil {
			return nil, err
		}
	}
	if d.Redfish == nil {
		if d.Redfish, err = redfish.New(redfish.DefaultConfig(), log.With("driver", "redfish")); err != nil {
			return nil, err
		}
	}
	if d.Command == nil {
		d.Command = command.New(log.With("driver", "command"))
	}
	s := &snapshot{st: st}
	return map[string]reboot.HardRebooter{
		vocab.PowerIPMI:          &method{name: api.MethodIPMI, s: s, run: d.ipmi},
		vocab.PowerRedfish:       &method{name: api.MethodRedfish, s: s, run: d.redfish},
		vocab.PowerCommandMethod: &method{name: api.MethodCommand, s: s, run: d.command},
	}, nil
}

// method is one power method as a reboot.CutReporter.
type method struct {
	name string
	s    *snapshot
	run  func(ctx context.Context, n reboot.Node, set map[string]string) (power.Cut, error)
}

var _ reboot.CutReporter = (*method)(nil)

func (m *method) Method() string { return m.name }

func (m *method) HardReboot(ctx context.Context, n reboot.Node) error {
	_, err := m.HardRebootCut(ctx, n)
	return err
}

func (m *method) HardRebootCut(ctx context.Context, n reboot.Node) (power.Cut, error) {
	set, err := m.s.of(ctx, n.MAC)
	if err != nil {
		return power.Cut{}, err
	}
	return m.run(ctx, n, set)
}

func (d Drivers) ipmi(ctx context.Context, n reboot.Node, set map[string]string) (power.Cut, error) {
	t := ipmi.Target{Node: n.Name, Host: set[vocab.IPMIHost], Port: ipmi.DefaultPort, User: set[vocab.IPMIUser],
		Password: power.NewSecret(set[vocab.IPMIPassword])}
	if t.Host == "" || t.User == "" || t.Password.IsZero() {
		return power.Cut{}, fmt.Errorf("%w: %s needs ipmi.host, ipmi.user and ipmi.password", reboot.ErrNoMethod, n.Name)
	}
	if p := set[vocab.IPMIPort]; p != "" {
		v, err := vocab.IPMIPortRange.Parse(p)
		if err != nil {
			return power.Cut{}, fmt.Errorf("node %s: invalid ipmi.port %q", n.Name, p)
		}
		t.Port = int(v)
	}
	var err error
	if t.OffTime, err = offTime(n, set); err != nil {
		return power.Cut{}, err
	}
	if n.PoweredOff {
		return power.Cut{}, d.IPMI.PowerOn(ctx, t)
	}
	return d.IPMI.Cycle(ctx, t)
}

func (d Drivers) redfish(ctx context.Context, n reboot.Node, set map[string]string) (power.Cut, error) {
	t := redfish.Target{Node: n.Name, User: set[vocab.RedfishUser], Password: power.NewSecret(set[vocab.RedfishPassword]),
		Insecure: vocab.On(set, vocab.RedfishInsecure)}
	if set[vocab.RedfishURL] == "" || t.User == "" || t.Password.IsZero() {
		return power.Cut{}, fmt.Errorf("%w: %s needs redfish.url, redfish.user and redfish.password", reboot.ErrNoMethod, n.Name)
	}
	var err error
	if t.URL, err = redfish.ParseURL(set[vocab.RedfishURL]); err != nil {
		return power.Cut{}, fmt.Errorf("node %s: %w", n.Name, err)
	}
	if t.OffTime, err = offTime(n, set); err != nil {
		return power.Cut{}, err
	}
	if n.PoweredOff {
		return power.Cut{}, d.Redfish.PowerOn(ctx, t)
	}
	return d.Redfish.Cycle(ctx, t)
}

func (d Drivers) command(ctx context.Context, n reboot.Node, set map[string]string) (power.Cut, error) {
	if set[vocab.PowerCommand] == "" {
		return command.NotVerified, fmt.Errorf("%w: %s has no power.command", reboot.ErrNoMethod, n.Name)
	}
	tpl, err := command.Parse(set[vocab.PowerCommand])
	if err != nil {
		return command.NotVerified, fmt.Errorf("node %s: %w", n.Name, err)
	}
	ip := n.Addr
	if h, _, err := net.SplitHostPort(n.Addr); err == nil {
		ip = h
	}
	t := command.Target{Node: command.Node{Name: n.Name, MAC: n.MAC, IP: ip}, Template: tpl, Timeout: 10 * time.Second}
	if v := set[vocab.PowerTimeout]; v != "" {
		if t.Timeout, err = vocab.PowerTimeoutRange.Parse(v); err != nil {
			return command.NotVerified, fmt.Errorf("node %s: invalid power.timeout %q", n.Name, v)
		}
	}
	if t.OffTime, err = offTime(n, set); err != nil {
		return command.NotVerified, err
	}
	if n.PoweredOff {
		return command.NotVerified, d.Command.Run(ctx, t, command.ActionOn)
	}
	return d.Command.Cycle(ctx, t)
}

// DefaultOffTime is power.off_time's default.
const DefaultOffTime = 2 * time.Second

func offTime(n reboot.Node, set map[string]string) (time.Duration, error) {
	v := set[vocab.PowerOffTime]
	if v == "" {
		return DefaultOffTime, nil
	}
	d, err := vocab.PowerOffTimeRange.Parse(v)
	if err != nil {
		return 0, fmt.Errorf("node %s: invalid power.off_time %q", n.Name, v)
	}
	return d, nil
}

// snapshot caches the store's settings for the concurrent calls of one
// reboot request: a thousand nodes rebooted at once read them once.
type snapshot struct {
	st store.Store

	mu  sync.Mutex
	at  time.Time                    // +checklocks:mu
	set map[string]map[string]string // +checklocks:mu
}

const freshness = 250 * time.Millisecond

func (s *snapshot) of(ctx context.Context, mac string) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.at) > freshness {
		all, err := s.st.Settings(ctx)
		if err != nil {
			return nil, fmt.Errorf("read power settings: %w", err)
		}
		s.set, s.at = all, time.Now()
	}
	return s.set[mac], nil
}
