// Package lab simulates a WalT testbed on one machine: physical nodes whose
// agents speak the real node protocol on loopback addresses of their own,
// powered by simulated PoE switches (package snmpswitch) that speak real
// SNMP. walt-lab, the demo, the tests and the benchmarks use it.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/walt-testbed/walt/internal/netservice"
)

// Fault is a misbehaviour injected into a simulated node.
type Fault string

const (
	Healthy    Fault = ""
	Refused    Fault = "refused"     // nothing listens on the agent port
	Hung       Fault = "hung"        // the agent port accepts and never answers
	KO         Fault = "ko"          // the agent declines REBOOT
	SlowBoot   Fault = "slow-boot"   // boots ten times slower
	NeverBoots Fault = "never-boots" // once down, never comes back
	NotPoE     Fault = "not-poe"     // powered by something else than its switch port
	// CrashLoop: each boot comes back and is reported, then the node dies
	// (its agent gone, no heartbeats) CrashAfter later, until a power
	// cycle boots it again, to die again.
	CrashLoop Fault = "crash-loop"
)

// Bounds of the flaky:K fault (Flaky).
const (
	MinFlaky = 2
	MaxFlaky = 1000
)

const flakyPrefix = "flaky:"

// Flaky is the fault flaky:K: of the boots the node starts, every K-th
// never comes back, the node staying dark (powered, nothing listening)
// until it is powered off and on again. That power cycle revives it: the
// boot it starts always comes back, and is not counted. So one reboot in
// K fails and is rescued by a power cycle; the node is never dead.
func Flaky(k int) Fault { return Fault(flakyPrefix + strconv.Itoa(k)) }

// FlakyEvery returns K for the fault flaky:K, 0 for any other.
func (f Fault) FlakyEvery() int {
	v, ok := strings.CutPrefix(string(f), flakyPrefix)
	if !ok {
		return 0
	}
	k, err := strconv.Atoi(v)
	if err != nil || k < MinFlaky || k > MaxFlaky {
		return 0
	}
	return k
}

// ParseFault checks a fault name.
func ParseFault(s string) (Fault, error) {
	switch f := Fault(s); f {
	case Healthy, Refused, Hung, KO, SlowBoot, NeverBoots, NotPoE, CrashLoop:
		return f, nil
	}
	if v, ok := strings.CutPrefix(s, flakyPrefix); ok {
		if v == "" || len(v) > 4 || strings.Trim(v, "0123456789") != "" {
			return "", fmt.Errorf("invalid node fault %.80q: want flaky:K, K a number of boots from %d to %d", s, MinFlaky, MaxFlaky)
		}
		k, _ := strconv.Atoi(v)
		if k < MinFlaky || k > MaxFlaky {
			return "", fmt.Errorf("invalid node fault %q: K is %d, want %d to %d (every K-th boot never comes back)", s, k, MinFlaky, MaxFlaky)
		}
		return Flaky(k), nil
	}
	return "", fmt.Errorf("unknown node fault %.80q: want refused, hung, ko, slow-boot, never-boots, not-poe, crash-loop or flaky:K", s)
}

// KOReason is what a node with the KO fault answers to REBOOT.
const KOReason = "/bin/walt-network-reboot is not executable on image"

// State is where a simulated node is in its life.
type State int

const (
	Off     State = iota // no power
	Booting              // powered, not serving yet
	Up                   // serving the agent port
)

func (s State) String() string { return [...]string{"off", "booting", "up"}[s] }

// Boot is a boot report of a simulated node.
type Boot struct {
	Node   *Node
	BootID string
	At     time.Time
}

// Current reports whether the node is up in this boot still.
func (b Boot) Current() bool { return b.Node.State() == Up && b.Node.BootID() == b.BootID }

// NodeConfig describes a simulated node.
type NodeConfig struct {
	Name  string
	MAC   string
	Model string
	// Addr is the agent's address, 127.x.y.z:12346.
	Addr  string
	Fault Fault
	// BootTime returns how long each boot takes.
	BootTime func() time.Duration
	// OnBoot, when not nil, is called (on its own goroutine) after each boot,
	// once the agent port serves.
	OnBoot func(Boot)
	// CrashAfter is how long a CrashLoop node lives after each boot;
	// 0: DefaultCrashAfter.
	CrashAfter time.Duration
	Logger     *slog.Logger
}

// DefaultCrashAfter is how long a CrashLoop node lives after each boot.
const DefaultCrashAfter = time.Second

// Node is a simulated physical node. It starts Off; PowerOn boots it. Its
// agent "reboots" by going away and booting again. Methods are safe for
// concurrent use.
type Node struct {
	cfg NodeConfig
	log *slog.Logger

	mu        sync.Mutex
	state     State         // +checklocks:mu
	gen       uint64        // power generation, bumped by each power change and reboot; +checklocks:mu
	stop      func()        // stops the running agent; +checklocks:mu
	served    chan struct{} // closed when the running agent has stopped; +checklocks:mu
	bootID    string        // +checklocks:mu
	boots     int           // +checklocks:mu
	rebooting bool          // +checklocks:mu
	// flaky:K: counted boots started, and dark while the last one never
	// came back (the next boot, after a power cycle, revives the node).
	flakyCount int  // +checklocks:mu
	dark       bool // +checklocks:mu
}

// NewNode returns a powered-off node.
func NewNode(cfg NodeConfig) *Node {
	if cfg.BootTime == nil {
		cfg.BootTime = func() time.Duration { return 0 }
	}
	if cfg.CrashAfter <= 0 {
		cfg.CrashAfter = DefaultCrashAfter
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Node{cfg: cfg, log: log.With("node", cfg.Name)}
}

func (n *Node) Name() string  { return n.cfg.Name }
func (n *Node) MAC() string   { return n.cfg.MAC }
func (n *Node) Addr() string  { return n.cfg.Addr }
func (n *Node) Model() string { return n.cfg.Model }
func (n *Node) Fault() Fault  { return n.cfg.Fault }

// State returns the node's state.
func (n *Node) State() State {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state
}

// BootID returns the id of the current boot, "" before the first.
func (n *Node) BootID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bootID
}

// Boots counts the node's completed boots.
func (n *Node) Boots() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.boots
}

// PowerOn boots a node that is off; it does nothing to a node with power.
func (n *Node) PowerOn() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state == Off {
		n.bootLocked()
	}
}

// PowerOff cuts the node's power: its agent stops at once, connections
// included. A node with the NotPoE fault ignores it: its power comes from
// elsewhere.
func (n *Node) PowerOff() {
	if n.cfg.Fault == NotPoE {
		return
	}
	n.mu.Lock()
	n.shutdownLocked()
	n.state = Off
	n.mu.Unlock()
}

// Close powers the node off (whatever its faults) and waits for its agent
// to stop.
func (n *Node) Close() {
	n.mu.Lock()
	n.shutdownLocked()
	n.state = Off
	served := n.served
	n.mu.Unlock()
	if served != nil {
		<-served
	}
}

// shutdownLocked stops the agent and cancels any boot in progress.
func (n *Node) shutdownLocked() {
	n.gen++
	n.rebooting = false
	if n.stop != nil {
		n.stop()
		n.stop = nil
	}
}

// bootLocked starts a boot that ends, after the boot time, with the agent
// serving, unless the power changes meanwhile.
func (n *Node) bootLocked() {
	n.shutdownLocked()
	n.state = Booting
	if n.cfg.Fault == NeverBoots && n.boots > 0 {
		return
	}
	if k := n.cfg.Fault.FlakyEvery(); k > 0 {
		if n.dark {
			n.dark = false // revived by a power cycle: not counted
		} else if n.flakyCount++; n.flakyCount%k == 0 {
			n.dark = true
			n.log.Debug("flaky boot never comes back", "boot", n.flakyCount)
			return
		}
	}
	gen := n.gen
	d := n.cfg.BootTime()
	if n.cfg.Fault == SlowBoot {
		d *= 10
	}
	time.AfterFunc(d, func() { n.finishBoot(gen) })
}

func (n *Node) finishBoot(gen uint64) {
	n.mu.Lock()
	if n.gen != gen {
		n.mu.Unlock()
		return // powered off or rebooted meanwhile
	}
	if n.served != nil {
		// The previous agent is stopping; its listener must be gone before
		// the new one binds the same address.
		served := n.served
		n.mu.Unlock()
		<-served
		n.mu.Lock()
		if n.gen != gen {
			n.mu.Unlock()
			return
		}
	}
	stop, served, err := n.serveLocked()
	if err != nil {
		n.mu.Unlock()
		n.log.Error("simulated node cannot boot", "err", err)
		return
	}
	n.stop, n.served = stop, served
	n.state = Up
	n.boots++
	n.bootID = newBootID()
	boot := Boot{Node: n, BootID: n.bootID, At: time.Now()}
	n.mu.Unlock()
	n.log.Debug("booted", "boot_id", boot.BootID)
	if n.cfg.OnBoot != nil {
		go n.cfg.OnBoot(boot)
	}
	if n.cfg.Fault == CrashLoop {
		time.AfterFunc(n.cfg.CrashAfter, func() { n.crash(gen) })
	}
}

// crash kills the agent of boot generation gen, if still up: the node
// stays powered and dark until a power cycle.
func (n *Node) crash(gen uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gen != gen || n.state != Up {
		return
	}
	n.shutdownLocked()
	n.state = Booting
	n.log.Debug("crashed", "boot_id", n.bootID)
}

// serveLocked starts the agent port as the node's fault says.
func (n *Node) serveLocked() (stop func(), served chan struct{}, err error) {
	served = make(chan struct{})
	if n.cfg.Fault == Refused {
		close(served)
		return func() {}, served, nil
	}
	ln, err := net.Listen("tcp", n.cfg.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", n.cfg.Addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(served)
		if n.cfg.Fault == Hung {
			BlackHole(ctx, ln)
			return
		}
		srv := &netservice.Server{Node: (*agentView)(n), Logger: n.log}
		if err := srv.Serve(ctx, ln); err != nil {
			n.log.Warn("agent stopped", "err", err)
		}
	}()
	return cancel, served, nil
}

// BlackHole accepts connections on ln and never answers, holding them
// open until ctx ends; it then closes ln and every connection and returns.
// It simulates a hung agent.
func BlackHole(ctx context.Context, ln net.Listener) {
	var conns []net.Conn
	var mu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		go io.Copy(io.Discard, c)
	}
}

// agentView is the node as its agent sees it.
type agentView Node

var _ netservice.Node = (*agentView)(nil)

func (a *agentView) PrepareReboot(args []string) (func(), error) {
	n := (*Node)(a)
	if n.cfg.Fault == KO {
		return nil, errors.New(KOReason)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.rebooting {
		return nil, nil
	}
	n.rebooting = true
	gen := n.gen
	return func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.gen == gen && n.state == Up {
			n.bootLocked()
		}
	}, nil
}

func (a *agentView) Blink(ctx context.Context, args []string) error { return nil }

func (a *agentView) Dmesg(ctx context.Context, w io.Writer) error {
	_, err := fmt.Fprintf(w, "[    0.000000] simulated node %s, boot %s\n", a.cfg.Name, (*Node)(a).BootID())
	return err
}

func newBootID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
