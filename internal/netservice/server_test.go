package netservice

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

func TestServerLineTimeout(t *testing.T) {
	t.Parallel()
	addr := serve(t, &Server{Node: newTestNode(), LineTimeout: 50 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "MODE multi\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, err := io.ReadAll(conn)
	if err != nil || string(out) != ReplyTimeout+"\n" {
		t.Errorf("idle client got %q, %v; want %q", out, err, ReplyTimeout+"\n")
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
	addr := serve(t, &Server{Node: newTestNode()})
	const n = 1000
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
	// The first connection is still open: a second one is closed at once,
	// unanswered (a reset, as it had unread data, counts as closed).
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	io.WriteString(second, "MODE single\nPING\n")
	second.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(second); len(got) != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("client over the limit got %q, %v; want the connection closed", got, err)
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
