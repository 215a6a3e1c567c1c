// Package reboottest starts node agents on loopback addresses for tests and
// benchmarks of the reboot engine, the server and the CLI: real agents
// (netservice.Server) that accept or refuse reboots, and broken peers
// (nothing listening, a listener that never answers, garbage replies).
package reboottest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/netservice"
)

// Behaviour says how a simulated node answers.
type Behaviour int

const (
	// OK: a real agent that accepts REBOOT.
	OK Behaviour = iota
	// KO: a real agent that declines REBOOT with KOReason.
	KO
	// Refused: nothing listens on the node's address.
	Refused
	// BlackHole: a listener accepts connections and never answers.
	BlackHole
	// Garbage: a listener answers every connection with GarbageReply.
	Garbage
)

// Replies of the simulated peers.
const (
	KOReason     = "/bin/walt-network-reboot is not executable on image"
	GarbageReply = "HELLO I AM NOT AN AGENT"
)

// Addrs hands out distinct loopback addresses 127.<octet>.x.y on the node
// port. Pick a different octet per test package, as packages run in
// parallel processes.
type Addrs struct {
	octet byte
	next  atomic.Uint32
}

// NewAddrs returns an allocator in 127.<octet>.0.0/16.
func NewAddrs(octet byte) *Addrs { return &Addrs{octet: octet} }

func (a *Addrs) addr() (string, error) {
	n := a.next.Add(1)
	if n >= 65535 {
		return "", errors.New("out of loopback addresses")
	}
	ip := net.IPv4(127, a.octet, byte(n>>8), byte(n))
	return net.JoinHostPort(ip.String(), strconv.Itoa(netservice.Port)), nil
}

// Listen returns a listener on a fresh address, skipping addresses in use.
func (a *Addrs) Listen() (net.Listener, error) {
	for {
		addr, err := a.addr()
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", addr)
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		return ln, err
	}
}

// Agent is one simulated node.
type Agent struct {
	Addr      string
	Behaviour Behaviour
	mu        sync.Mutex
	reboots   [][]string
	notify    chan struct{}
}

// Reboots returns the arguments of every REBOOT the agent accepted.
func (a *Agent) Reboots() [][]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([][]string(nil), a.reboots...)
}

// Rebooted is signalled (without blocking) each time a reboot starts.
func (a *Agent) Rebooted() <-chan struct{} { return a.notify }

// PrepareReboot implements netservice.Node.
func (a *Agent) PrepareReboot(args []string) (func(), error) {
	if a.Behaviour == KO {
		return nil, errors.New(KOReason)
	}
	return func() {
		a.mu.Lock()
		a.reboots = append(a.reboots, args)
		a.mu.Unlock()
		select {
		case a.notify <- struct{}{}:
		default:
		}
	}, nil
}

// Blink implements netservice.Node.
func (a *Agent) Blink(context.Context, []string) error { return nil }

// Dmesg implements netservice.Node.
func (a *Agent) Dmesg(context.Context, io.Writer) error { return nil }

// Start starts one simulated node; it stops when ctx ends. Cleanup waits
// for its goroutines: call the returned stop function (or let t.Cleanup do
// it with StartT).
func (a *Addrs) Start(ctx context.Context, b Behaviour) (*Agent, func(), error) {
	ln, err := a.Listen()
	if err != nil {
		return nil, nil, err
	}
	ag := &Agent{Addr: ln.Addr().String(), Behaviour: b, notify: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	switch b {
	case OK, KO:
		srv := &netservice.Server{Node: ag}
		go func() { defer close(done); srv.Serve(ctx, ln) }()
	case Refused:
		ln.Close() // the address stays ours: nobody else uses 127.<octet>/16
		close(done)
	case BlackHole, Garbage:
		go func() { defer close(done); serveBroken(ctx, ln, b) }()
	default:
		cancel()
		ln.Close()
		return nil, nil, fmt.Errorf("unknown behaviour %d", b)
	}
	return ag, func() { cancel(); <-done }, nil
}

// StartT starts one simulated node for a test and stops it at cleanup.
func (a *Addrs) StartT(t testing.TB, b Behaviour) *Agent {
	t.Helper()
	ag, stop, err := a.Start(context.Background(), b)
	if err != nil {
		t.Fatalf("start simulated node: %v", err)
	}
	t.Cleanup(stop)
	return ag
}

func serveBroken(ctx context.Context, ln net.Listener, b Behaviour) {
	if b == BlackHole {
		lab.BlackHole(ctx, ln)
		return
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.WriteString(c, GarbageReply+"\n")
		c.Close()
	}
}
