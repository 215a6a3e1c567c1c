package server

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/walt-testbed/walt/internal/auth"
)

// With Config.TLS set, the API's listener takes TLS and plain HTTP: the
// first byte of a connection tells them apart (a TLS handshake starts
// with 0x16, an HTTP request with a method's letter). Plain HTTP serves
// everything to loopback peers (the CLI on the server host), and only the
// open routes (readiness, metrics, node reports: no token) to others, as
// node agents on the LAN report in plain HTTP; a call needing a token over
// plain HTTP from another host is refused (authenticate), its token unread.

// tlsRecordHandshake is the first byte of a TLS ClientHello.
const tlsRecordHandshake = 0x16

type sniffListener struct {
	net.Listener
	cfg *tls.Config
}

func (l sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c, cfg: l.cfg}, nil
}

// sniffConn decides at its first Read (so that Accept never waits on a
// peer) whether it speaks TLS or plain HTTP.
type sniffConn struct {
	net.Conn
	cfg  *tls.Config
	once sync.Once
	rw   io.ReadWriter // after once: the TLS or plain conversation
	err  error
	// plainRemote, set by once: plain HTTP from a non-loopback peer.
	plainRemote bool
}

func (c *sniffConn) decide() {
	c.once.Do(func() {
		var b [1]byte
		if _, err := io.ReadFull(c.Conn, b[:]); err != nil {
			c.err = err
			return
		}
		pre := &prefixConn{Conn: c.Conn, pre: b[:]}
		switch {
		case b[0] == tlsRecordHandshake:
			c.rw = tls.Server(pre, c.cfg)
		default:
			c.rw, c.plainRemote = pre, !isLoopback(c.Conn.RemoteAddr())
		}
	})
}

func (c *sniffConn) Read(p []byte) (int, error) {
	c.decide()
	if c.err != nil {
		return 0, c.err
	}
	return c.rw.Read(p)
}

func (c *sniffConn) Write(p []byte) (int, error) {
	c.decide()
	if c.err != nil {
		return 0, c.err
	}
	return c.rw.Write(p)
}

type connKey struct{}

// withConn is the http.Server's ConnContext: the connection goes into its
// requests' contexts, for plainRemote.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// plainRemote reports whether the request of ctx came over plain HTTP
// from another host on a TLS server.
func plainRemote(ctx context.Context) bool {
	sc, ok := ctx.Value(connKey{}).(*sniffConn)
	if !ok {
		return false
	}
	sc.decide() // decided already: the request was read
	return sc.plainRemote
}

// errPlainHTTP refuses a call needing a token over plain HTTP from
// another host.
var errPlainHTTP = kindf(errForbidden, "this call needs a token, which this server takes over https only from other hosts: use https:// (walt login pins the certificate)")

// prefixConn reads pre before the rest of its connection.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func isLoopback(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// tlsFingerprint is the fingerprint of cfg's certificate, for the log.
func tlsFingerprint(cfg *tls.Config) string {
	if cfg == nil || len(cfg.Certificates) == 0 || len(cfg.Certificates[0].Certificate) == 0 {
		return ""
	}
	return auth.Fingerprint(cfg.Certificates[0].Certificate[0])
}
