package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/accounts/accountstest"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/testutil"
)

// served is a server run by Serve on a real listener, with its deadlines
// and connection bound, unlike servertest's httptest server (which also
// starts boot tracking, as Serve does).
type served struct {
	addr string
	c    *client.Client
}

func serve(t *testing.T, mod func(*server.Config)) *served {
	t.Helper()
	cfg := servertest.Config(t)
	mod(&cfg)
	srv, err := server.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	c, err := client.New("http://"+ln.Addr().String(), accountstest.NewTokens(t, cfg.Store).HTTPClient())
	if err != nil {
		t.Fatal(err)
	}
	return &served{addr: ln.Addr().String(), c: c}
}

// addNode starts a simulated node and reports it as its agent would.
func (s *served) addNode(t *testing.T, name string, b reboottest.Behaviour) {
	t.Helper()
	ag := addrs.StartT(t, b)
	host, _, _ := net.SplitHostPort(ag.Addr)
	ip := net.ParseIP(host).To4()
	mac := fmt.Sprintf("52:54:00:%02x:%02x:%02x", ip[1], ip[2], ip[3])
	if _, err := s.c.ReportNode(t.Context(), api.NodeReport{MAC: mac, IP: host, Name: name, Model: "rpi-b"}); err != nil {
		t.Fatal(err)
	}
}

// slowClient sends a request whose body never comes: the headers, then
// one byte of a 1000-byte body.
func slowClient(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// An open route (node reports): a route needing a token answers 401
	// before reading the body.
	fmt.Fprintf(c, "POST %s/node-reports HTTP/1.1\r\nHost: walt\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", api.Prefix)
	return c
}

// cut waits until the server has closed c, and fails after within.
func cut(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	answer, err := io.ReadAll(c) // an error answer, then EOF
	if err != nil {
		t.Errorf("slow client not cut within %s: %v", within, err)
	}
	if !strings.HasPrefix(string(answer), "HTTP/1.1 400") || !strings.Contains(string(answer), "timeout") {
		t.Errorf("slow client got %q, want a 400 naming the timeout", answer)
	}
}

// TestSlowClientsAreCut: clients that send a body at a crawl hold every
// connection slot; the read deadline cuts them, and a normal client that
// waited behind them is served.
func TestSlowClientsAreCut(t *testing.T) {
	t.Parallel()
	const slots = 8
	s := serve(t, func(c *server.Config) { c.ReadTimeout, c.MaxConns = 300*time.Millisecond, slots })
	var slow []net.Conn
	for range 3 * slots {
		slow = append(slow, slowClient(t, s.addr))
	}
	// Every slot is taken by a slow client, others wait in the kernel's
	// queue: this request is answered once the deadlines have cut enough
	// of them.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := s.c.Nodes(ctx, nil); err != nil {
		t.Fatalf("normal client behind slow ones: %v", err)
	}
	for _, c := range slow {
		cut(t, c, 10*time.Second)
	}
}

// TestStreamsOutliveDeadlines: a log follow stream idle for longer than
// the read and write timeouts still delivers the next line, a reboot whose
// node takes longer than them to fail streams to the end, and so does a
// wait that outlasts them.
func TestStreamsOutliveDeadlines(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	s := serve(t, func(c *server.Config) {
		c.ReadTimeout, c.WriteTimeout = timeout, timeout
		c.Reboot.ReplyTimeout = 4 * timeout // a black hole's soft reboot fails after that
	})

	lines := make(chan string, 16)
	ctx, cancel := context.WithCancel(t.Context())
	followed := make(chan error, 1)
	go func() {
		followed <- s.c.Logs(ctx, 0, true, func(l api.LogLine) error { lines <- l.Line; return nil })
	}()
	report := func(name, mac string) {
		t.Helper()
		if _, err := s.c.ReportNode(t.Context(), api.NodeReport{MAC: mac, IP: "127.20.255.1", Name: name, Model: "rpi-b"}); err != nil {
			t.Fatal(err)
		}
	}
	await := func(want string) {
		t.Helper()
		for {
			select {
			case l := <-lines:
				if strings.Contains(l, want) {
					return
				}
			case err := <-followed:
				t.Fatalf("log follow ended before %q: %v", want, err)
			case <-time.After(10 * time.Second):
				t.Fatalf("no log line %q", want)
			}
		}
	}
	report("first", "52:54:00:ff:00:01")
	await("node first is booted")
	<-time.After(3 * timeout)             // idle past both deadlines
	report("second", "52:54:00:ff:00:02") // a known node keeps its name: another node
	await("node second is booted")

	s.addNode(t, "hole", reboottest.BlackHole)
	start := time.Now()
	res, err := s.c.Reboot(t.Context(), api.RebootRequest{Set: "hole", Requester: "alice"}, nil)
	if err != nil || len(res) != 1 {
		t.Fatalf("reboot through the stream = %v, %v; want one result", res, err)
	}
	if d := time.Since(start); d < 2*timeout {
		t.Errorf("reboot answered in %s: the stream did not outlast the deadlines", d)
	}

	// A wait for a node that never reports its new boot blocks past the
	// deadlines and ends with its own timeout.
	s.addNode(t, "mute", reboottest.OK)
	if res, err := s.c.Reboot(t.Context(), api.RebootRequest{Set: "mute", Requester: "alice"}, nil); err != nil || len(res) != 1 || !res[0].OK {
		t.Fatalf("soft reboot of mute = %+v, %v", res, err)
	}
	last, err := s.c.Wait(t.Context(), api.WaitRequest{Set: "mute", Requester: "alice", Timeout: api.Duration(4 * timeout)}, nil)
	if err != nil || last.Type != api.WaitTimeout {
		t.Errorf("wait past the deadlines = %+v, %v; want its timeout event", last, err)
	}

	cancel()
	if err := <-followed; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("log follow = %v", err)
	}
}

// TestIdleConnectionsClosed: a keep-alive connection left idle is closed
// after the idle timeout.
func TestIdleConnectionsClosed(t *testing.T) {
	t.Parallel()
	s := serve(t, func(c *server.Config) { c.IdleTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s/nodes HTTP/1.1\r\nHost: walt\r\n\r\n", api.Prefix)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle keep-alive connection: read = %v, want EOF (closed by the server)", err)
	}
}

// dialFrom opens a TCP connection to addr from the loopback address from
// (127.0.0.1 is this host's own, which the per-peer bound spares).
func dialFrom(t testing.TB, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends one request on c and reads its answer, leaving c open
// (keep-alive) if the server does; it returns the read error, if any.
func exchange(c net.Conn, br *bufio.Reader) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(c, "GET %s/health HTTP/1.1\r\nHost: walt\r\n\r\n", api.Prefix); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// TestIdleConnectionsMakeRoom: with every slot held by a keep-alive
// connection between requests (a node's heartbeats hold one each), a new
// client is served at once, the idle connection closed for it, not after
// the idle timeout.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	t.Parallel()
	s := serve(t, func(c *server.Config) { c.MaxConns, c.IdleTimeout = 2, time.Hour })
	var idle [2]net.Conn
	var readers [2]*bufio.Reader
	for i := range idle {
		idle[i] = dialFrom(t, "127.0.0.1", s.addr)
		readers[i] = bufio.NewReader(idle[i])
		if err := exchange(idle[i], readers[i]); err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := s.c.Nodes(ctx, nil); err != nil {
		t.Fatalf("a new client with both slots held by idle connections: %v", err)
	}
	closed := 0
	for i, c := range idle {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := readers[i].ReadByte()
		switch {
		case err == io.EOF:
			closed++
		case !errors.Is(err, os.ErrDeadlineExceeded):
			t.Errorf("idle connection %d: read = %v, want EOF or still open", i, err)
		}
	}
	if closed != 1 {
		t.Errorf("%d idle connections closed to make room for one, want 1", closed)
	}
}

// TestConnectionsPerPeer: one address holds at most MaxConnsPerPeer
// connections; its next one is closed at once while other addresses, and
// this host's own 127.0.0.1 beyond the bound, are served; once one of its
// connections closes, it is served again.
func TestConnectionsPerPeer(t *testing.T) {
	t.Parallel()
	s := serve(t, func(c *server.Config) { c.MaxConns, c.MaxConnsPerPeer = 16, 2 })
	const hog = "127.0.0.9"
	held := []net.Conn{dialFrom(t, hog, s.addr), dialFrom(t, hog, s.addr)}
	for _, c := range held {
		if err := exchange(c, bufio.NewReader(c)); err != nil {
			t.Fatalf("connection within the bound: %v", err)
		}
	}
	over := dialFrom(t, hog, s.addr)
	if err := exchange(over, bufio.NewReader(over)); err == nil {
		t.Fatalf("a third connection from %s was served, bound 2", hog)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a third connection from %s was left waiting, not closed: %v", hog, err)
	}
	for _, from := range []string{"127.0.0.10", "127.0.0.1", "127.0.0.1", "127.0.0.1"} {
		c := dialFrom(t, from, s.addr)
		if err := exchange(c, bufio.NewReader(c)); err != nil {
			t.Errorf("connection from %s while %s is at its bound: %v", from, hog, err)
		}
	}
	held[0].Close()
	testutil.EventuallyNil(t, 10*time.Second, "a connection from "+hog+" served after one of its two closed", func() error {
		c := dialFrom(t, hog, s.addr)
		defer c.Close()
		return exchange(c, bufio.NewReader(c))
	})
}
