package server

import (
	"container/list"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the connection bounds in Config.
const (
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 2 * time.Minute
	DefaultIdleTimeout  = 2 * time.Minute
	DefaultMaxConns     = 1024
	// DefaultMaxConnsPerPeer bounds one address's share of DefaultMaxConns.
	DefaultMaxConnsPerPeer = 64
)

// connDefaults fills in the connection bounds of cfg left at zero and
// rejects negative ones.
func connDefaults(cfg *Config) error {
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"read timeout", &cfg.ReadTimeout, DefaultReadTimeout},
		{"write timeout", &cfg.WriteTimeout, DefaultWriteTimeout},
		{"idle timeout", &cfg.IdleTimeout, DefaultIdleTimeout},
	} {
		if *d.v < 0 {
			return fmt.Errorf("%s: must be > 0 (got %s)", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.MaxConns < 0 {
		return fmt.Errorf("max conns: must be > 0 (got %d)", cfg.MaxConns)
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConnsPerPeer < 0 {
		return fmt.Errorf("max conns per peer: must be > 0 (got %d)", cfg.MaxConnsPerPeer)
	}
	if cfg.MaxConnsPerPeer == 0 {
		cfg.MaxConnsPerPeer = min(DefaultMaxConnsPerPeer, cfg.MaxConns)
	}
	return nil
}

// limitListener keeps at most cap(slots) accepted connections open, at
// most perPeer of them from one address other than the server host's own
// (trustedSource: walt-lab, the vnode supervisor and QEMU guests behind
// user-mode NAT all connect from 127.0.0.1, and are many).
//
// When every slot is taken, the connection that has been idle between two
// requests the longest is closed to make room (an HTTP client opens a new
// one for its next request): keep-alive connections, which each node's
// heartbeats hold, never keep a node's report or a user's call waiting.
// Without an idle one, Accept waits for a connection to close before it
// takes the next from the kernel's queue; with the read deadlines, a crowd
// of slow clients is cut in time and the queue moves on. A peer over its
// own bound has its new connection closed at once, so one host cannot take
// the slots of all the others.
//
// Accept errors are passed through as they are: http.Server retries the
// temporary ones (EMFILE, ENFILE, ECONNABORTED) after a backoff of up to
// 1 s, so running out of descriptors slows the server down, never stops it.
type limitListener struct {
	net.Listener
	slots      chan struct{}
	perPeer    int
	closed     chan struct{}
	closeOnce  sync.Once
	log        *slog.Logger
	warnedFull atomic.Int64  // unix seconds of the last "limit reached" warning
	warnedPeer atomic.Int64  // same, "limit of one peer reached"
	idled      chan struct{} // a connection became idle (buffer 1)

	mu     sync.Mutex
	peers  map[netip.Addr]int         // open connections per bounded peer +checklocks:mu
	idle   *list.List                 // idle connections, the oldest first +checklocks:mu
	inIdle map[net.Conn]*list.Element // their places in idle +checklocks:mu
}

func limitConns(ln net.Listener, n, perPeer int, log *slog.Logger) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), perPeer: perPeer, closed: make(chan struct{}), idled: make(chan struct{}, 1), log: log,
		peers: make(map[netip.Addr]int), idle: list.New(), inIdle: make(map[net.Conn]*list.Element)}
}

// Accept takes the next connection of a peer under its bound, then waits
// for a slot for it: a slot is freed for a client that is there, never
// ahead of one.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer, bounded := l.peerOf(c)
		if bounded && !l.join(peer) {
			c.Close()
			l.warn(&l.warnedPeer, "API connections from one address over its limit: the new one is closed", "peer", peer, "max_conns_per_peer", l.perPeer)
			continue
		}
		release := func() {
			if bounded {
				l.leave(peer)
			}
		}
		if err := l.takeSlot(); err != nil {
			c.Close()
			release()
			return nil, err
		}
		return &limitedConn{Conn: c, release: sync.OnceFunc(func() {
			release()
			<-l.slots
		})}, nil
	}
}

// takeSlot takes a free slot. With none, it closes the oldest idle
// connection and takes the slot it frees; with no idle one either, it
// waits for a connection to close or to become idle.
func (l *limitListener) takeSlot() error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	for {
		if c := l.oldestIdle(); c != nil {
			go c.Close() // a TLS connection writes its close alert: never block Accept on it
			select {
			case l.slots <- struct{}{}:
				return nil
			case <-l.closed:
				return net.ErrClosed
			}
		}
		l.warn(&l.warnedFull, "API connection limit reached: new clients wait", "max_conns", cap(l.slots))
		select {
		case l.slots <- struct{}{}:
			return nil
		case <-l.idled:
		case <-l.closed:
			return net.ErrClosed
		}
	}
}

// peerOf gives c's remote address and whether the per-peer bound applies.
func (l *limitListener) peerOf(c net.Conn) (netip.Addr, bool) {
	a, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	peer := a.AddrPort().Addr().Unmap()
	return peer, !trustedSource(peer)
}

// join counts a connection of peer, unless peer has perPeer already.
func (l *limitListener) join(peer netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.peers[peer] >= l.perPeer {
		return false
	}
	l.peers[peer]++
	return true
}

func (l *limitListener) leave(peer netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.peers[peer]--; l.peers[peer] <= 0 {
		delete(l.peers, peer)
	}
}

// trackState is the http.Server's ConnState hook: it keeps the idle
// connections in the order they became idle.
func (l *limitListener) trackState(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.inIdle[c]; ok {
		l.idle.Remove(e)
		delete(l.inIdle, c)
	}
	if st == http.StateIdle {
		l.inIdle[c] = l.idle.PushBack(c)
		select {
		case l.idled <- struct{}{}:
		default:
		}
	}
}

// oldestIdle takes the connection idle the longest out of the idle list,
// nil if there is none.
func (l *limitListener) oldestIdle() net.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.idle.Front()
	if e == nil {
		return nil
	}
	c := l.idle.Remove(e).(net.Conn)
	delete(l.inIdle, c)
	return c
}

// warn logs msg at most once a minute per *last.
func (l *limitListener) warn(last *atomic.Int64, msg string, args ...any) {
	now := time.Now().Unix()
	prev := last.Load()
	if now-prev >= 60 && last.CompareAndSwap(prev, now) {
		l.log.Warn(msg, args...)
	}
}

// Close closes the listener and ends an Accept waiting for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// limitedConn gives its slot back when closed, once.
type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// CloseWrite is the TCP half-close that http.Server uses before closing a
// connection whose request it did not read whole (a body cut by the read
// deadline), so that the client reads the error answer rather than a reset.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
