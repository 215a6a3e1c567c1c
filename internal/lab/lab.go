package lab

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/netservice"
)

// PortsPerSwitch is the number of PoE ports of each simulated switch.
const PortsPerSwitch = 48

// Config describes a simulated testbed.
type Config struct {
	Nodes    int
	Switches int // enough for Nodes at PortsPerSwitch each when 0
	// Octet picks the loopback block: nodes get 127.<Octet>.x.y:12346,
	// switches 127.<Octet>.255.k. Default 100.
	Octet int
	// SNMPPort is the UDP port of the switches; default 161.
	SNMPPort  int
	Community string // default "private"
	Variant   snmpswitch.Variant
	// BootTime is the distribution of the nodes' boot durations;
	// BootTimes gives some nodes, by name, their own.
	BootTime  BootTime
	BootTimes map[string]BootTime
	// Seed seeds each node's draws of boot times (node i draws from a
	// generator seeded with Seed and i), so that a run can be done again;
	// 0: a random seed, which Lab.Seed tells.
	Seed uint64
	// CrashAfter is how long crash-loop nodes live after each boot; 0:
	// DefaultCrashAfter.
	CrashAfter time.Duration
	// Faults gives some nodes, by name, a misbehaviour.
	Faults map[string]Fault
	// SwitchFaults gives some switches, by name, a misbehaviour.
	SwitchFaults map[string]SwitchFault
	OnBoot       func(Boot)
	Logger       *slog.Logger
}

// SwitchFault is a misbehaviour injected into a simulated switch.
type SwitchFault string

const (
	Unreachable    SwitchFault = "unreachable"     // answers nothing
	WrongCommunity SwitchFault = "wrong-community" // configured with another community than the server's
	Slow           SwitchFault = "slow"            // answers each request after 500 ms
)

// ParseSwitchFault checks a switch fault name.
func ParseSwitchFault(s string) (SwitchFault, error) {
	switch f := SwitchFault(s); f {
	case Unreachable, WrongCommunity, Slow:
		return f, nil
	}
	return "", fmt.Errorf("unknown switch fault %.80q: want unreachable, wrong-community or slow", s)
}

// Switch is a simulated switch of the lab and the nodes on its ports.
type Switch struct {
	*snmpswitch.Switch
	MAC   string
	IP    string
	Nodes []*Node // Nodes[i] is on port i+1
}

// Lab is a running simulated testbed.
type Lab struct {
	Switches []*Switch
	Nodes    []*Node
	// Seed is the seed of the boot times drawn (Config.Seed, or the
	// random one chosen).
	Seed   uint64
	byName map[string]*Node
}

// Start builds the testbed and powers every node on.
func Start(cfg Config) (*Lab, error) {
	if cfg.Nodes < 0 || cfg.Nodes > 200*PortsPerSwitch*2 {
		return nil, fmt.Errorf("invalid number of nodes %d: want 0 to %d", cfg.Nodes, 200*PortsPerSwitch*2)
	}
	need := (cfg.Nodes + PortsPerSwitch - 1) / PortsPerSwitch
	if cfg.Switches == 0 {
		cfg.Switches = max(need, 1)
	}
	if cfg.Switches < need || cfg.Switches > 250 {
		return nil, fmt.Errorf("invalid number of switches %d: %d nodes need %d to 250 switches of %d ports", cfg.Switches, cfg.Nodes, need, PortsPerSwitch)
	}
	if cfg.Octet == 0 {
		cfg.Octet = 100
	}
	if cfg.Octet < 1 || cfg.Octet > 254 {
		return nil, fmt.Errorf("invalid loopback octet %d: want 1 to 254", cfg.Octet)
	}
	if cfg.SNMPPort == 0 {
		cfg.SNMPPort = 161
	}
	if cfg.Community == "" {
		cfg.Community = "private"
	}
	if cfg.BootTime == (BootTime{}) {
		cfg.BootTime = BootTime{Min: 500 * time.Millisecond, Max: 1500 * time.Millisecond}
	}
	if err := cfg.BootTime.check(); err != nil {
		return nil, err
	}
	for name, bt := range cfg.BootTimes {
		if err := bt.check(); err != nil {
			return nil, fmt.Errorf("boot time of %s: %w", name, err)
		}
	}
	for cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := fitFileLimit(cfg.Nodes, cfg.Switches, cfg.Logger); err != nil {
		return nil, err
	}
	l := &Lab{Seed: cfg.Seed, byName: map[string]*Node{}}
	for name := range cfg.Faults {
		if _, err := ParseFault(string(cfg.Faults[name])); err != nil {
			return nil, err
		}
	}
	for i := range cfg.Nodes {
		name := NodeName(i, cfg.Nodes)
		bt, ok := cfg.BootTimes[name]
		if !ok {
			bt = cfg.BootTime
		}
		n := NewNode(NodeConfig{
			Name:       name,
			MAC:        fmt.Sprintf("02:00:%02x:00:%02x:%02x", cfg.Octet, (i+1)>>8, (i+1)&0xff),
			Model:      "rpi-b",
			Addr:       NodeAddr(cfg.Octet, i),
			Fault:      cfg.Faults[name],
			BootTime:   bt.Drawer(cfg.Seed, uint64(i)),
			OnBoot:     cfg.OnBoot,
			CrashAfter: cfg.CrashAfter,
			Logger:     cfg.Logger,
		})
		l.Nodes = append(l.Nodes, n)
		l.byName[name] = n
	}
	for name := range cfg.Faults {
		if l.byName[name] == nil {
			return nil, fmt.Errorf("fault for unknown node %q", name)
		}
	}
	for name := range cfg.BootTimes {
		if l.byName[name] == nil {
			return nil, fmt.Errorf("boot time for unknown node %q", name)
		}
	}
	for k := range cfg.Switches {
		sw, err := l.startSwitch(cfg, k)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.Switches = append(l.Switches, sw)
	}
	for name := range cfg.SwitchFaults {
		if l.Switch(name) == nil {
			l.Close()
			return nil, fmt.Errorf("fault for unknown switch %q", name)
		}
	}
	for _, n := range l.Nodes {
		n.PowerOn()
	}
	return l, nil
}

// NodeAddr is the agent address of the i-th node of a lab on loopback
// block 127.<octet>: 127.<octet>.x.y:12346.
func NodeAddr(octet, i int) string {
	return net.JoinHostPort(fmt.Sprintf("127.%d.%d.%d", octet, (i+1)>>8, (i+1)&0xff), strconv.Itoa(netservice.Port))
}

// SwitchIP is the address of the k-th switch of a lab on loopback block
// 127.<octet>: 127.<octet>.255.<k+1>.
func SwitchIP(octet, k int) string { return fmt.Sprintf("127.%d.255.%d", octet, k+1) }

// NodeName is the name of the i-th of n simulated nodes: node01 ... node12.
func NodeName(i, n int) string {
	width := max(len(strconv.Itoa(n)), 2)
	return fmt.Sprintf("node%0*d", width, i+1)
}

func (l *Lab) startSwitch(cfg Config, k int) (*Switch, error) {
	sw := &Switch{
		MAC: fmt.Sprintf("02:00:%02x:ff:00:%02x", cfg.Octet, k+1),
		IP:  SwitchIP(cfg.Octet, k),
	}
	first := k * PortsPerSwitch
	for i := first; i < min(first+PortsPerSwitch, len(l.Nodes)); i++ {
		sw.Nodes = append(sw.Nodes, l.Nodes[i])
	}
	name := fmt.Sprintf("switch%d", k+1)
	chassis, _ := net.ParseMAC(sw.MAC)
	var neighbours []snmpswitch.Neighbour
	for i, n := range sw.Nodes {
		mac, _ := net.ParseMAC(n.MAC())
		neighbours = append(neighbours, snmpswitch.Neighbour{LocalPort: i + 1, MAC: mac, SysName: n.Name()})
	}
	community := cfg.Community
	fault := cfg.SwitchFaults[name]
	if fault != "" {
		if _, err := ParseSwitchFault(string(fault)); err != nil {
			return nil, err
		}
	}
	if fault == WrongCommunity {
		community = "not-" + cfg.Community
	}
	s, err := snmpswitch.Start(snmpswitch.Config{
		Name:       name,
		Addr:       net.JoinHostPort(sw.IP, strconv.Itoa(cfg.SNMPPort)),
		Community:  community,
		Variant:    cfg.Variant,
		Ports:      PortsPerSwitch,
		Neighbours: neighbours,
		ChassisMAC: chassis,
		OnPower:    func(ev snmpswitch.PowerEvent) { sw.power(ev) },
		Logger:     cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("start simulated switch %s: %w", name, err)
	}
	sw.Switch = s
	for i, n := range sw.Nodes {
		if n.Fault() == NotPoE {
			s.SetDevice(i+1, false)
		}
	}
	switch fault {
	case Unreachable:
		s.SetUnreachable(true)
	case Slow:
		s.SetLatency(500 * time.Millisecond)
	}
	return sw, nil
}

// power applies a port's power change to the node on it. It runs on the
// switch's goroutine, so it only flips state and returns.
func (sw *Switch) power(ev snmpswitch.PowerEvent) {
	if ev.IfIndex < 1 || ev.IfIndex > len(sw.Nodes) {
		return
	}
	n := sw.Nodes[ev.IfIndex-1]
	if ev.On {
		n.PowerOn()
	} else {
		n.PowerOff()
	}
}

// Node returns the node with that name, or nil.
func (l *Lab) Node(name string) *Node { return l.byName[name] }

// Switch returns the switch with that name, or nil.
func (l *Lab) Switch(name string) *Switch {
	for _, sw := range l.Switches {
		if sw.Name() == name {
			return sw
		}
	}
	return nil
}

// Close stops every node and switch.
func (l *Lab) Close() {
	var wg sync.WaitGroup
	for _, n := range l.Nodes {
		wg.Go(n.Close)
	}
	wg.Wait()
	for _, sw := range l.Switches {
		if sw.Switch != nil {
			sw.Switch.Close()
		}
	}
}

// maxFaultsSpec bounds a ParseFaults spec: room for a fault on each of
// the largest lab's nodes.
const maxFaultsSpec = 1 << 20

// ParseFaults parses "node03=refused,node07=flaky:3,switch2=unreachable"
// into node and switch faults; names starting with "switch" are switches.
func ParseFaults(spec string) (map[string]Fault, map[string]SwitchFault, error) {
	nodes, switches := map[string]Fault{}, map[string]SwitchFault{}
	if spec == "" {
		return nodes, switches, nil
	}
	if len(spec) > maxFaultsSpec {
		return nil, nil, fmt.Errorf("invalid faults: %d bytes, at most %d", len(spec), maxFaultsSpec)
	}
	var errs []error
	for _, item := range strings.Split(spec, ",") {
		if len(errs) == 10 {
			errs = append(errs, errors.New("(more faults not checked)"))
			break
		}
		name, f, ok := strings.Cut(item, "=")
		if !ok || name == "" {
			errs = append(errs, fmt.Errorf("invalid fault %.80q: want name=fault", item))
			continue
		}
		if strings.HasPrefix(name, "switch") {
			sf, err := ParseSwitchFault(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("%.64s: %w", name, err))
			}
			switches[name] = sf
			continue
		}
		nf, err := ParseFault(f)
		if err == nil && nf == Healthy {
			err = fmt.Errorf("no fault given (want refused, hung, ko, slow-boot, never-boots, not-poe, crash-loop or flaky:K)")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%.64s: %w", name, err))
		}
		nodes[name] = nf
	}
	return nodes, switches, errors.Join(errs...)
}
