//go:build linux

package netservice

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/testutil"
)

// Two exchanges of different reply timeouts to an agent that never
// answers: the one with the short timeout ends first, with its timeout.
func TestExchangeShortTimeoutFirst(t *testing.T) {
	t.Parallel()
	addr := fakeAgent(t, "", true)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	long := make(chan error, 1)
	go func() {
		_, err := (&Requester{ReplyTimeout: time.Hour}).Do(ctx, addr, Request{Verb: VerbPing})
		long <- err
	}()
	_, err := (&Requester{ReplyTimeout: 50 * time.Millisecond}).Do(t.Context(), addr, Request{Verb: VerbPing})
	if !errors.Is(err, ErrReplyTimeout) {
		t.Fatalf("short Do() = %v, want a reply timeout", err)
	}
	select {
	case err := <-long:
		t.Fatalf("the exchange of an hour ended first: %v", err)
	default:
	}
	cancel()
	if err := <-long; !errors.Is(err, context.Canceled) {
		t.Errorf("long Do() after cancel = %v, want context.Canceled", err)
	}
}

// oneReply serves one connection on ln: it reads the request's two lines,
// then writes each of pieces.
func oneReply(ln net.Listener, pieces ...string) {
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := NewReader(c)
		ReadLine(r)
		ReadLine(r)
		for _, p := range pieces {
			io.WriteString(c, p) // a segment each (TCP_NODELAY), however they are read
		}
	}()
}

// A reply that comes in pieces is put together.
func TestExchangeReplyInPieces(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	oneReply(ln, "OK ", "in ", "three pieces", "\r\n")
	line, err := (&Requester{}).Do(t.Context(), ln.Addr().String(), Request{Verb: VerbPing})
	if err != nil || line != "OK in three pieces" {
		t.Errorf("Do() = %q, %v; want the whole line", line, err)
	}
}

// An exchange given up (its context ended) closes its socket: the agent
// sees the end of the connection.
func TestExchangeCancelClosesSocket(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			closed <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		_, err = io.Copy(io.Discard, c) // returns at the client's close
		closed <- err
	}()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := (&Requester{ReplyTimeout: time.Hour}).Do(ctx, ln.Addr().String(), Request{Verb: VerbPing})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Do() = %v, want context.Canceled", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("agent's read ended with %v, want the end of the connection", err)
	}
}

// A context that has ended before the exchange starts ends it at once,
// even with a reply timeout of an hour: the deadline set after the
// connection does not undo the context's.
func TestExchangeCancelledBeforeStart(t *testing.T) {
	t.Parallel()
	addr := fakeAgent(t, "", true)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for range 50 { // the race it guards against is a matter of scheduling
		done := make(chan error, 1)
		go func() {
			_, err := (&Requester{ReplyTimeout: time.Hour}).Do(ctx, addr, Request{Verb: VerbPing})
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Do() = %v, want context.Canceled", err)
			}
		case <-time.After(30 * time.Second): // a bound on a hang, not a wait
			t.Fatal("Do() with an ended context still waits after 30 s")
		}
	}
}

// Many exchanges at once, to agents that answer and one that never does,
// each get their own answer.
func TestExchangeManyAtOnce(t *testing.T) {
	t.Parallel()
	ok := fakeAgent(t, "OK\n", false)
	ko := fakeAgent(t, "KO no\n", false)
	hung := fakeAgent(t, "", true)
	rq := &Requester{ReplyTimeout: 200 * time.Millisecond}
	type result struct {
		addr string
		err  error
	}
	results := make(chan result)
	addrs := []string{hung}
	for range 100 {
		addrs = append(addrs, ok, ko)
	}
	for _, a := range addrs {
		go func() {
			_, err := rq.Do(t.Context(), a, Request{Verb: VerbPing})
			results <- result{a, err}
		}()
	}
	for range addrs {
		r := <-results
		want := map[string]error{ok: nil, ko: ErrKO, hung: ErrReplyTimeout}[r.addr]
		if (want == nil) != (r.err == nil) || want != nil && !errors.Is(r.err, want) {
			t.Errorf("Do(%s) = %v, want %v", r.addr, r.err, want)
		}
	}
}

// FuzzExchangeReply: rawExchange puts a reply together from the pieces
// it reads as ReadLine reads it from a stream.
func FuzzExchangeReply(f *testing.F) {
	f.Add([]byte("OK\n"), uint8(1))
	f.Add([]byte("KO reason\r\nrest"), uint8(3))
	f.Add([]byte("OK no end"), uint8(2))
	f.Add([]byte(strings.Repeat("x", MaxLineLength)+"\r\n"), uint8(200))
	f.Add([]byte(strings.Repeat("x", MaxLineLength+1)+"\n"), uint8(7))
	f.Add([]byte(strings.Repeat("x", MaxLineLength+5)), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		if len(data) > 3*MaxLineLength {
			return
		}
		wantLine, wantErr := ReadLine(bufio.NewReaderSize(bytes.NewReader(data), MaxLineLength+2))
		ex := &nodeExchange{}
		var got exchangeResult
		done := false
		// Reads of cut+1 bytes, at most the size of rawExchange's buffer.
		for rest := data; len(rest) > 0 && !done; {
			n := min(int(cut)+1, len(rest), 512)
			got.line, done, got.err = ex.take(rest[:n])
			rest = rest[n:]
		}
		if !done {
			got = exchangeResult{err: endOfReply(ex.reply)}
		}
		if got.err != nil || wantErr != nil {
			if !errors.Is(got.err, wantErr) {
				t.Fatalf("rawExchange error %v, ReadLine %v", got.err, wantErr)
			}
			return
		}
		if got.line != wantLine {
			t.Fatalf("rawExchange line %q, ReadLine %q", got.line, wantLine)
		}
		if len(ex.reply) > 2*(MaxLineLength+2) {
			t.Fatalf("rawExchange kept %d bytes", len(ex.reply))
		}
	})
}

// An IPv6 node is reached with rawExchange too.
func TestExchangeIPv6(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	defer ln.Close()
	oneReply(ln, "OK v6\n")
	line, err := (&Requester{}).Do(t.Context(), ln.Addr().String(), Request{Verb: VerbPing})
	if err != nil || line != "OK v6" {
		t.Errorf("Do(%s) = %q, %v; want OK v6", ln.Addr(), line, err)
	}
}

// BenchmarkFanout sends PING to 256 agents at once, each on its own
// loopback port, with rawExchange and by dialling, and reports the CPU
// time of the whole process (the agents' side included) per exchange:
//
//	go test -run '^$' -bench Fanout ./internal/netservice
func BenchmarkFanout(b *testing.B) {
	const agents = 256
	node := newTestNode()
	addrs := make([]string, agents)
	for i := range addrs {
		addrs[i] = serve(b, &Server{Node: node})
	}
	for _, way := range []struct {
		name string
		rq   *Requester
	}{{"raw", &Requester{}}, {"dialled", &Requester{dialOnly: true}}} {
		b.Run(way.name, func(b *testing.B) {
			cpu0 := testutil.CPUTime(b)
			for b.Loop() {
				errs := make(chan error, agents)
				for _, a := range addrs {
					go func() {
						_, err := way.rq.Do(b.Context(), a, Request{Verb: VerbPing})
						errs <- err
					}()
				}
				for range addrs {
					if err := <-errs; err != nil {
						b.Fatal(err)
					}
				}
			}
			n := float64(b.N * agents)
			b.ReportMetric(float64((testutil.CPUTime(b)-cpu0).Microseconds())/n, "cpu-µs/exchange")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/n, "µs/exchange")
			b.ReportMetric(0, "ns/op")
		})
	}
}
