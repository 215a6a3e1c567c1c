package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/store/sqlite"
)

// TestLimitListener: with n connections open, Accept waits until one is
// closed; closing the listener ends a waiting Accept.
func TestLimitListener(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := limitConns(inner, 2, 2, slog.New(slog.DiscardHandler))
	defer ln.Close()
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ln.Accept(); err != nil {
		t.Fatal(err)
	}
	third := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			third <- c
		}
		close(third)
	}()
	select {
	case <-third:
		t.Fatal("third connection accepted while two are open, limit 2")
	case <-time.After(100 * time.Millisecond):
	}
	a.Close()
	a.Close() // a second close gives nothing back twice
	c, ok := <-third
	if !ok {
		t.Fatal("Accept failed after a slot was freed")
	}
	c.Close()

	// Both slots free again (one closed twice): two Accepts get through,
	// then a closed listener ends the one waiting.
	for range 2 {
		go net.Dial("tcp", inner.Addr().String())
	}
	done := make(chan error, 1)
	go func() {
		var err error
		for err == nil {
			_, err = ln.Accept()
		}
		done <- err
	}()
	ln.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed listener = %v, want net.ErrClosed", err)
	}
}

// emfileListener fails its first n Accepts the way accept(2) does when the
// process is out of file descriptors.
type emfileListener struct {
	net.Listener
	left atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.left.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestServeSurvivesEMFILE: running out of file descriptors slows accepting
// down (http.Server backs off on temporary errors, which the connection
// limit passes through); the server answers afterwards.
func TestServeSurvivesEMFILE(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := New(t.Context(), Config{Store: st, Reboot: reboot.DefaultConfig(), Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &emfileListener{Listener: inner}
	ln.left.Store(5)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	c, err := client.New("http://"+inner.Addr().String(), tokenClient(t, st))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Nodes(t.Context(), nil); err != nil {
		t.Errorf("after EMFILE: %v", err)
	}
	if left := ln.left.Load(); left > 0 {
		t.Errorf("%d EMFILE errors not returned yet: the test proves nothing", left)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
}
