// Package bmcreboot is the server's hard-reboot methods for nodes whose
// power.method is ipmi, redfish or command, beside poereboot's for PoE:
// each reads the node's power settings from the store and power-cycles it
// through its driver (internal/power/ipmi, redfish, command), reporting
// whether the cut was read back (reboot.CutReporter).
package bmcreboot

import (
	"context"
	"errors"
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

// Journalled power-offs. The node's own power has no switch port: its
// record in the store's journal of power-offs is store.NodePowerPort
// of the node's own MAC, written before the power is cut and removed once
// it is on again, so that a server killed between "off" and "on" powers
// the node on at its next start (Restore).
func (m *method) recordOff(ctx context.Context, n reboot.Node) error {
	err := m.s.st.AddPoEOff(ctx, store.PoEOff{SwitchMAC: n.MAC, Port: store.NodePowerPort, Reason: power.ReasonHardReboot, At: time.Now()})
	if err != nil {
		return fmt.Errorf("node %s: record the power-off before cutting: %w", n.Name, err)
	}
	return nil
}

func (m *method) clearOff(ctx context.Context, n reboot.Node) error {
	// The power is on: clearing the record must not depend on the
	// request's context, which may end as the cycle does.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := m.s.st.RemovePoEOff(ctx, n.MAC, store.NodePowerPort); err != nil {
		return fmt.Errorf("node %s: clear the record of its power-off: %w", n.Name, err)
	}
	return nil
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
	if !n.PoweredOff {
		if err := m.recordOff(ctx, n); err != nil {
			return power.Cut{}, err
		}
	}
	cut, err := m.run(ctx, n, set)
	// The record stays while the node may be off: a failed cycle leaves
	// it for the next hard reboot (which then only powers the node on)
	// or the next start. It goes when the power is on again, or was never
	// cut (settings refused before anything was sent, the BMC refused the
	// session, or it still reads the power on).
	if err == nil || !cut.Verified && (errors.Is(err, reboot.ErrNoMethod) || errors.Is(err, power.ErrDenied) || errors.Is(err, power.ErrNotCut) || errors.Is(err, errSettings)) {
		if cerr := m.clearOff(ctx, n); cerr != nil && err == nil {
			err = cerr
		}
	}
	return cut, err
}

// errSettings marks a node's stored settings refused before anything was
// sent.
var errSettings = errors.New("invalid setting")

func (d Drivers) ipmi(ctx context.Context, n reboot.Node, set map[string]string) (power.Cut, error) {
	t := ipmi.Target{Node: n.Name, Host: set[vocab.IPMIHost], Port: ipmi.DefaultPort, User: set[vocab.IPMIUser],
		Password: power.NewSecret(set[vocab.IPMIPassword])}
	if t.Host == "" || t.User == "" || t.Password.IsZero() {
		return power.Cut{}, fmt.Errorf("%w: %s needs ipmi.host, ipmi.user and ipmi.password", reboot.ErrNoMethod, n.Name)
	}
	if p := set[vocab.IPMIPort]; p != "" {
		v, err := vocab.IPMIPortRange.Parse(p)
		if err != nil {
			return power.Cut{}, fmt.Errorf("node %s: %w ipmi.port %q", n.Name, errSettings, p)
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
		return power.Cut{}, fmt.Errorf("node %s: %w: %w", n.Name, errSettings, err)
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
		return command.NotVerified, fmt.Errorf("node %s: %w: %w", n.Name, errSettings, err)
	}
	ip := n.Addr
	if h, _, err := net.SplitHostPort(n.Addr); err == nil {
		ip = h
	}
	t := command.Target{Node: command.Node{Name: n.Name, MAC: n.MAC, IP: ip}, Template: tpl, Timeout: 10 * time.Second}
	if v := set[vocab.PowerTimeout]; v != "" {
		if t.Timeout, err = vocab.PowerTimeoutRange.Parse(v); err != nil {
			return command.NotVerified, fmt.Errorf("node %s: %w power.timeout %q", n.Name, errSettings, v)
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
		return 0, fmt.Errorf("node %s: %w power.off_time %q", n.Name, errSettings, v)
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

// Restored is the outcome of powering on one node at start-up.
type Restored struct {
	Node, MAC, Reason string
	// Err is nil when the node is on again and its record gone.
	Err error
}

// Restore powers on, through methods (New's), every node whose own power
// the journal says the server cut and did not restore: a server killed
// during the node's power-cycle. The nodes are powered on at once, each
// through the method its power.method names now; a node whose method is
// no longer one of them is left alone, its record dropped, with an
// error saying so. The error is for a failure to read the store.
func Restore(ctx context.Context, st store.Store, methods map[string]reboot.HardRebooter) ([]Restored, error) {
	offs, err := st.PoEOffs(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore power: read the power journal: %w", err)
	}
	var recs []store.PoEOff
	for _, o := range offs {
		if o.Port == store.NodePowerPort {
			recs = append(recs, o)
		}
	}
	if len(recs) == 0 {
		return nil, nil
	}
	settings, err := st.Settings(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore power: read the power settings: %w", err)
	}
	out := make([]Restored, len(recs))
	var wg sync.WaitGroup
	for i, o := range recs {
		out[i] = Restored{Node: o.SwitchMAC, MAC: o.SwitchMAC, Reason: o.Reason}
		d, err := st.Device(ctx, o.SwitchMAC)
		if err != nil {
			out[i].Err = err
			continue
		}
		out[i].Node = d.Name
		name := settings[d.MAC][vocab.PowerMethod]
		m := methods[name]
		if m == nil {
			out[i].Err = fmt.Errorf("node %s: power.method is now %q: its power is left as it is", d.Name, name)
			if err := st.RemovePoEOff(ctx, d.MAC, store.NodePowerPort); err != nil {
				out[i].Err = errors.Join(out[i].Err, err)
			}
			continue
		}
		wg.Go(func() {
			out[i].Err = m.HardReboot(ctx, reboot.Node{Name: d.Name, MAC: d.MAC, Addr: d.IP, PoweredOff: true, Power: name})
		})
	}
	wg.Wait()
	return out, nil
}
