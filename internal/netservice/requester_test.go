package netservice

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeAgent accepts connections and answers each with reply after reading
// the request, or never answers when hang is set.
func fakeAgent(t *testing.T, reply string, hang bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := NewReader(c)
				ReadLine(r)
				ReadLine(r)
				if hang {
					io.Copy(io.Discard, c)
					return
				}
				io.WriteString(c, reply)
			}()
		}
	}()
	return ln.Addr().String()
}

// closedPort returns a loopback address nobody listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// fullBacklog returns the address of a listening socket that never accepts
// and whose accept queue is full, so new connections cannot be set up.
func fullBacklog(t *testing.T) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	// Fill the queue: connections succeed until it is full.
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill the accept queue of a loopback listener")
	return ""
}

func TestRequesterDo(t *testing.T) {
	t.Parallel()
	node := newTestNode()
	okAddr := serve(t, &Server{Node: node})
	tests := []struct {
		name     string
		addr     string
		wantLine string
		wantErr  error
		wantText string
	}{
		{name: "ok", addr: okAddr, wantLine: "OK"},
		{name: "ok with words", addr: fakeAgent(t, "OK rebooting\n", false), wantLine: "OK rebooting"},
		{name: "refused", addr: closedPort(t), wantErr: ErrRefused, wantText: "connection refused"},
		{name: "black hole", addr: fakeAgent(t, "", true), wantErr: ErrReplyTimeout, wantText: "timed out waiting for reply"},
		{name: "ko", addr: fakeAgent(t, "KO /bin/walt-reboot is not executable on image\n", false),
			wantErr: ErrKO, wantText: "/bin/walt-reboot is not executable on image"},
		{name: "timeout reply", addr: fakeAgent(t, ReplyTimeout+"\n", false),
			wantErr: ErrBadReply, wantText: `node did not respond properly: "TIMEOUT Closing on my side."`},
		{name: "garbage", addr: fakeAgent(t, "\x00\x01\x02\n", false),
			wantErr: ErrBadReply, wantText: `node did not respond properly: "???"`},
		{name: "ko with control bytes", addr: fakeAgent(t, "KO bad\x1b[2Jnews\xff\n", false),
			wantErr: ErrKO, wantText: "bad?[2Jnews?"},
		{name: "long ko", addr: fakeAgent(t, "KO "+strings.Repeat("x", 4000)+"\n", false),
			wantErr: ErrKO, wantText: strings.Repeat("x", 256-len("... (cut, 4000 bytes)")) + "... (cut, 4000 bytes)"},
		{name: "closed without reply", addr: fakeAgent(t, "", false), wantErr: ErrBroken, wantText: "broken connection: EOF"},
		{name: "partial line", addr: fakeAgent(t, "OK", false), wantErr: ErrBroken, wantText: "broken connection: unexpected EOF"},
		{name: "connect timeout", addr: fullBacklog(t), wantErr: ErrConnectTimeout, wantText: "connection timed out"},
	}
	// Addresses of IP and port are reached with rawExchange, others are
	// dialled: both ways must tell the same.
	raw := &Requester{ConnectTimeout: 300 * time.Millisecond, ReplyTimeout: 300 * time.Millisecond}
	dialled := &Requester{ConnectTimeout: 300 * time.Millisecond, ReplyTimeout: 300 * time.Millisecond, dialOnly: true}
	for _, tt := range tests {
		for way, rq := range map[string]*Requester{"raw": raw, "dialled": dialled} {
			t.Run(tt.name+"/"+way, func(t *testing.T) {
				t.Parallel()
				testDo(t, rq, tt.addr, tt.wantLine, tt.wantErr, tt.wantText)
			})
		}
	}
}

func testDo(t *testing.T, rq *Requester, addr, wantLine string, wantErr error, wantText string) {
	line, err := rq.Do(t.Context(), addr, Request{Verb: VerbReboot})
	if line != wantLine {
		t.Errorf("Do() line = %q, want %q", line, wantLine)
	}
	if !errors.Is(err, wantErr) {
		t.Fatalf("Do() error = %v, want kind %v", err, wantErr)
	}
	if err != nil && err.Error() != wantText {
		t.Errorf("Do() error text = %q, want %q", err.Error(), wantText)
	}
	var e *Error
	if err != nil && (!errors.As(err, &e) || e.Addr != addr) {
		t.Errorf("Do() error %#v does not name address %s", err, addr)
	}
}

func TestRequesterSendsModeAndArgs(t *testing.T) {
	t.Parallel()
	node := newTestNode()
	addr := serve(t, &Server{Node: node})
	rq := &Requester{}
	if _, err := rq.Do(t.Context(), addr, Request{Verb: VerbReboot, Args: []string{"kexec.allow=false"}}); err != nil {
		t.Fatal(err)
	}
	<-node.started
	node.mu.Lock()
	defer node.mu.Unlock()
	if len(node.rebootArgs) != 1 || len(node.rebootArgs[0]) != 1 || node.rebootArgs[0][0] != "kexec.allow=false" {
		t.Errorf("agent saw REBOOT args %v", node.rebootArgs)
	}
}

func TestRequesterCancel(t *testing.T) {
	t.Parallel()
	addr := fakeAgent(t, "", true)
	ctx, cancel := context.WithCancel(t.Context())
	rq := &Requester{ReplyTimeout: time.Hour}
	done := make(chan error, 1)
	go func() {
		_, err := rq.Do(ctx, addr, Request{Verb: VerbPing})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Do() after cancel = %v, want context.Canceled", err)
	}
}

// FuzzReasonText checks that what an Error keeps of an agent's reply is
// printable ASCII, at most MaxReasonLength bytes, and the reply itself
// when that already was.
func FuzzReasonText(f *testing.F) {
	for _, seed := range []string{"", "/bin/walt-reboot is not executable on image", "\x00\x1b[2J\xff", strings.Repeat("x", 4096), strings.Repeat("y", MaxReasonLength)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := reasonText(s)
		if len(got) > MaxReasonLength {
			t.Fatalf("reasonText(%d bytes) = %d bytes, over %d", len(s), len(got), MaxReasonLength)
		}
		printable := true
		for i := range len(s) {
			printable = printable && s[i] >= 0x20 && s[i] <= 0x7e
		}
		for i := range len(got) {
			if got[i] < 0x20 || got[i] > 0x7e {
				t.Fatalf("reasonText(%q) = %q holds byte 0x%02x", s, got, got[i])
			}
		}
		if printable && len(s) <= MaxReasonLength && got != s {
			t.Fatalf("reasonText(%q) = %q, want it unchanged", s, got)
		}
		if len(s) > MaxReasonLength && !strings.HasSuffix(got, "bytes)") {
			t.Fatalf("reasonText(%d bytes) = %q, without a cut marker", len(s), got)
		}
	})
}
