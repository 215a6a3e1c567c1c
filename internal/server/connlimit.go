package server

import (
	"fmt"
	"log/slog"
	"net"
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
	return nil
}

// limitListener keeps at most cap(slots) accepted connections open: Accept
// waits for one to close before taking the next from the kernel's queue.
// With the read deadlines, a crowd of slow clients is cut in time and the
// queue moves on; without a bound, each of them holds memory and a file
// descriptor until the process runs out of both.
//
// Accept errors are passed through as they are: http.Server retries the
// temporary ones (EMFILE, ENFILE, ECONNABORTED) after a backoff of up to
// 1 s, so running out of descriptors slows the server down, never stops it.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
	log       *slog.Logger
	warned    atomic.Int64 // unix seconds of the last "limit reached" warning
}

func limitConns(ln net.Listener, n int, log *slog.Logger) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), closed: make(chan struct{}), log: log}
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.warnFull()
		select {
		case l.slots <- struct{}{}:
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
}

// warnFull says, at most once a minute, that clients wait for a slot.
func (l *limitListener) warnFull() {
	now := time.Now().Unix()
	last := l.warned.Load()
	if now-last >= 60 && l.warned.CompareAndSwap(last, now) {
		l.log.Warn("API connection limit reached: new clients wait", "max_conns", cap(l.slots))
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
