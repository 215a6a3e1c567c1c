package netservice

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/testutil"
)

// testNode is a Node that records what it was asked.
type testNode struct {
	mu         sync.Mutex
	rebootArgs [][]string
	started    chan struct{} // receives one value per started reboot
	rebootErr  error
	underWay   atomic.Bool
	blinkErr   error
}

func newTestNode() *testNode { return &testNode{started: make(chan struct{}, 2000)} }

func (n *testNode) PrepareReboot(args []string) (func(), error) {
	if n.rebootErr != nil {
		return nil, n.rebootErr
	}
	n.mu.Lock()
	n.rebootArgs = append(n.rebootArgs, args)
	n.mu.Unlock()
	if n.underWay.Load() {
		return nil, nil
	}
	return func() { n.started <- struct{}{} }, nil
}

func (n *testNode) Blink(ctx context.Context, args []string) error { return n.blinkErr }

func (n *testNode) Dmesg(ctx context.Context, w io.Writer) error {
	_, err := io.WriteString(w, "[0.0] kernel says hello\n")
	return err
}

// serve starts a Server for node on a fresh loopback port and returns its
// address. The server stops, and its goroutines are awaited, at cleanup.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v", err)
		}
	})
	return ln.Addr().String()
}

// exchange sends input, then reads everything the server writes until it
// closes the connection.
func exchange(t *testing.T, addr, input string, halfClose bool) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, input); err != nil {
		t.Fatal(err)
	}
	if halfClose {
		conn.(*net.TCPConn).CloseWrite()
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading after %q: %v (got %q)", input, err, out)
	}
	return string(out)
}

func TestServerRequests(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("P", MaxLineLength+1)
	tests := []struct {
		name      string
		input     string
		halfClose bool
		node      func(*testNode)
		want      string
	}{
		{name: "ping", input: "MODE single\nPING\n", want: "OK\n"},
		{name: "single mode closes after one request", input: "MODE single\nPING\nPING\n", want: "OK\n"},
		{name: "unknown mode is single", input: "MODE whatever\nPING\nPING\n", want: "OK\n"},
		{name: "multi mode", input: "MODE multi\nPING\nPING\nCLOSE\n", want: "OK\nOK\nOK Closing on my side.\n"},
		{name: "crlf", input: "MODE multi\r\nPING\r\nCLOSE\r\n", want: "OK\nOK Closing on my side.\n"},
		{name: "close before mode", input: "CLOSE\n", want: ReplyClosing + "\n"},
		{name: "request before mode", input: "PING\n", want: ReplyStartWithMode + "\n"},
		{name: "whitespace lines ignored", input: "  \nMODE single\n\t\nPING\n", want: "OK\n"},
		{name: "empty line closes silently", input: "MODE multi\n\nPING\n", want: ""},
		{name: "eof gives timeout reply", input: "MODE multi\nPING\n", halfClose: true, want: "OK\n" + ReplyTimeout + "\n"},
		{name: "half-closed before any request", input: "", halfClose: true, want: ReplyTimeout + "\n"},
		{name: "unknown request", input: "MODE multi\nFROB x\nCLOSE\n", want: "KO unknown request \"FROB\"\nOK Closing on my side.\n"},
		{name: "binary garbage", input: "MODE multi\n\x00\xff\xfe\n", want: "KO malformed request: not printable ASCII (byte 0x00 at offset 0). Closing on my side.\n"},
		{name: "line too long", input: "MODE multi\n" + long + "\n", want: "KO line too long (over 4096 bytes). Closing on my side.\n"},
		{name: "reboot", input: "MODE single\nREBOOT\n", want: "OK\n"},
		{name: "reboot ends a multi session", input: "MODE multi\nREBOOT\nPING\n", want: "OK\n"},
		{name: "reboot refused", input: "MODE single\nREBOOT\n", node: func(n *testNode) { n.rebootErr = errors.New("/bin/walt-reboot is not executable on image") },
			want: "KO /bin/walt-reboot is not executable on image\n"},
		{name: "blink", input: "MODE single\nBLINK 1\n", want: "OK\n"},
		{name: "blink fails", input: "MODE single\nBLINK 1\n", node: func(n *testNode) { n.blinkErr = errors.New("/bin/blink returned a non-zero error code") },
			want: "KO /bin/blink returned a non-zero error code\n"},
		{name: "dmesg", input: "MODE single\nDMESG\n", want: "OK\n\n[0.0] kernel says hello\n"},
		{name: "shell disabled", input: "MODE single\nSHELL\n", want: "KO SHELL is disabled on this node (start walt-node with --allow-shell to enable it)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			node := newTestNode()
			if tt.node != nil {
				tt.node(node)
			}
			addr := serve(t, &Server{Node: node})
			if got := exchange(t, addr, tt.input, tt.halfClose); got != tt.want {
				t.Errorf("reply to %.40q = %q, want %q", tt.input, got, tt.want)
			}
		})
	}
}

// TestServerLineTimeout checks that an idle client is told and closed
// after LineTimeout, as WalT does, also in the middle of a MODE multi
// session.
func TestServerLineTimeout(t *testing.T) {
	t.Parallel()
	addr := serve(t, &Server{Node: newTestNode(), LineTimeout: 50 * time.Millisecond})
	for input, want := range map[string]string{
		"":                   ReplyTimeout + "\n",
		"MODE multi\n":       ReplyTimeout + "\n",
		"MODE multi\nPING\n": "OK\n" + ReplyTimeout + "\n",
		"MODE multi\nPI":     ReplyTimeout + "\n",
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, input)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(conn)
		if err != nil || string(out) != want {
			t.Errorf("idle client after %q got %q, %v; want %q", input, out, err, want)
		}
	}
}

// TestServerRebootStartsAfterClientClose checks the flush guarantee: the
// reboot starts only once the client has received OK and closed.
func TestServerRebootStartsAfterClientClose(t *testing.T) {
	t.Parallel()
	node := newTestNode()
	addr := serve(t, &Server{Node: node, FlushTimeout: time.Minute})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "MODE single\nREBOOT kexec.allow=false\n")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "OK\n" {
		t.Fatalf("REBOOT reply = %q, %v", line, err)
	}
	select {
	case <-node.started:
		t.Fatal("reboot started before the client closed its side")
	default:
	}
	conn.Close()
	<-node.started
	if got := fmt.Sprint(node.rebootArgs); got != "[[kexec.allow=false]]" {
		t.Errorf("reboot args = %s, want [[kexec.allow=false]]", got)
	}
}

func TestServerShell(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	addr := serve(t, &Server{Node: newTestNode(), AllowShell: true, Shell: []string{"sh"}})
	got := exchange(t, addr, "MODE single\nSHELL\necho hello-$((6*7))\nexit\n", false)
	if want := "OK\n\nhello-42\nEND-OF-SHELL\n"; got != want {
		t.Errorf("shell session = %q, want %q", got, want)
	}
}

func TestServerShellTimeout(t *testing.T) {
	t.Parallel()
	addr := serve(t, &Server{Node: newTestNode(), AllowShell: true, Shell: []string{"sh"}, LineTimeout: 100 * time.Millisecond})
	got := exchange(t, addr, "MODE single\nSHELL\necho ready\n", false)
	if want := "OK\n\nready\nSHELL-TIMEOUT\nEND-OF-SHELL\n"; got != want {
		t.Errorf("idle shell session = %q, want %q", got, want)
	}
}

// TestServerManyClients checks that 1000 clients connected at once are all
// answered: connections are served concurrently.
func TestServerManyClients(t *testing.T) {
	t.Parallel()
	const n = 1000
	addr := serve(t, &Server{Node: newTestNode(), MaxConns: n, MaxConnsPerPeer: n})
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		defer c.Close()
		// Every client holds its connection open, mid-session.
		io.WriteString(c, "MODE multi\n")
		conns[i] = c
	}
	var wg sync.WaitGroup
	var answered atomic.Int64
	for _, c := range conns {
		wg.Go(func() {
			c.SetDeadline(time.Now().Add(30 * time.Second))
			io.WriteString(c, "PING\n")
			if line, err := bufio.NewReader(c).ReadString('\n'); err == nil && line == "OK\n" {
				answered.Add(1)
			}
		})
	}
	wg.Wait()
	if answered.Load() != n {
		t.Errorf("%d of %d concurrent clients answered", answered.Load(), n)
	}
}

func TestServerConnectionLimit(t *testing.T) {
	t.Parallel()
	addr := serve(t, &Server{Node: newTestNode(), MaxConns: 1})
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	io.WriteString(first, "MODE multi\nPING\n")
	if line, _ := bufio.NewReader(first).ReadString('\n'); line != "OK\n" {
		t.Fatalf("first client got %q", line)
	}
	// The first connection is still open: a second one is told why and
	// closed at once.
	if got := exchange(t, addr, "", false); got != "KO too many connections (limit 1). Closing on my side.\n" {
		t.Errorf("client over the limit got %q", got)
	}
}

// dialFrom connects to addr from the loopback address local.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// holdMulti opens n connections from local, each in the middle of a MODE
// multi session and answered once (so the server counts it).
func holdMulti(t *testing.T, local, addr string, n int) {
	t.Helper()
	for range n {
		c := dialFrom(t, local, addr)
		io.WriteString(c, "MODE multi\nPING\n")
		if line, err := bufio.NewReader(c).ReadString('\n'); line != "OK\n" {
			t.Fatalf("held client from %s got %q, %v", local, line, err)
		}
	}
}

// ask sends request lines from local and returns the first reply line,
// once the server has closed the connection (so its slot is free again).
func ask(t *testing.T, local, addr, input string) string {
	t.Helper()
	c := dialFrom(t, local, addr)
	io.WriteString(c, input)
	r := bufio.NewReader(c)
	line, _ := r.ReadString('\n')
	io.Copy(io.Discard, r)
	return line
}

// TestServerPeerLimits floods the server from one address, then from
// several: other clients are still served, and the reserved server address
// is served even when every ordinary slot is taken.
func TestServerPeerLimits(t *testing.T) {
	t.Parallel()
	node := newTestNode()
	server := netip.MustParseAddr("127.0.0.1")
	addr := serve(t, &Server{Node: node, MaxConns: 8, MaxConnsPerPeer: 4, ReservedConns: 2,
		Reserved: func(a netip.Addr) bool { return a == server }})

	holdMulti(t, "127.0.0.5", addr, 4)
	if got := ask(t, "127.0.0.5", addr, ""); got != "KO too many connections from 127.0.0.5 (limit 4). Closing on my side.\n" {
		t.Errorf("fifth client from 127.0.0.5 got %q", got)
	}
	if got := ask(t, "127.0.0.6", addr, "MODE single\nPING\n"); got != "OK\n" {
		t.Errorf("client from 127.0.0.6 got %q while 127.0.0.5 is at its limit, want OK", got)
	}

	holdMulti(t, "127.0.0.6", addr, 4)
	if got := ask(t, "127.0.0.7", addr, ""); got != "KO too many connections (limit 8). Closing on my side.\n" {
		t.Errorf("client from 127.0.0.7 got %q with every slot taken", got)
	}
	if got := ask(t, "127.0.0.1", addr, "MODE single\nPING\n"); got != "OK\n" {
		t.Errorf("server's PING got %q with every ordinary slot taken, want OK", got)
	}
	if got := ask(t, "127.0.0.1", addr, "MODE single\nREBOOT\n"); got != "OK\n" {
		t.Errorf("server's REBOOT got %q with every ordinary slot taken, want OK", got)
	}

	// Servers have their own bound.
	addr = serve(t, &Server{Node: node, ReservedConns: 2, Reserved: func(a netip.Addr) bool { return a == server }})
	holdMulti(t, "127.0.0.1", addr, 2)
	if got := ask(t, "127.0.0.1", addr, ""); got != "KO too many connections from servers (limit 2). Closing on my side.\n" {
		t.Errorf("third held server connection got %q", got)
	}
}

// failingListener returns err from its first n Accepts.
type failingListener struct {
	net.Listener
	n   atomic.Int32
	err error
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, l.err
	}
	return l.Listener.Accept()
}

// TestServeSurvivesAcceptErrors checks that running out of file
// descriptors (EMFILE from accept) makes the server pause and retry, with
// one log line, instead of stopping.
func TestServeSurvivesAcceptErrors(t *testing.T) {
	t.Parallel()
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED} {
		t.Run(errno.Error(), func(t *testing.T) {
			t.Parallel()
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := &failingListener{Listener: inner, err: &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}}
			ln.n.Store(6)
			var logs testutil.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- (&Server{Node: newTestNode(), Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Serve(ctx, ln)
			}()
			if got := ask(t, "127.0.0.1", inner.Addr().String(), "MODE single\nPING\n"); got != "OK\n" {
				t.Errorf("PING after %d accept errors got %q, want OK", 6, got)
			}
			select {
			case err := <-done:
				t.Fatalf("Serve() = %v after accept errors, want it still serving", err)
			default:
			}
			if n := strings.Count(logs.String(), "accept failed"); n != 1 {
				t.Errorf("%d log lines for 6 accept errors within seconds, want 1:\n%s", n, logs.String())
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve() = %v after cancel", err)
			}
		})
	}
}

// TestServeStopsCleanly checks that ending the context closes open
// connections and that Serve returns only after their goroutines exit.
func TestServeStopsCleanly(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Server{Node: newTestNode()}).Serve(ctx, ln) }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "MODE multi\nPING\n")
	bufio.NewReader(conn).ReadString('\n')
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve() = %v after cancel, want nil", err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after Serve returned")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still accepting after Serve returned")
	}
}
