package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// streamEvent is what TestEventStream's handler sends.
type streamEvent struct {
	From int `json:"from"`
	Seq  int `json:"seq"`
}

// countingConn counts the writes to a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.writes}, nil
}

// eventServer serves, on real TCP, a stream whose events come from fn;
// writes counts the server's writes to the connection, if not nil.
func eventServer(t *testing.T, writes *atomic.Int64, fn func(es *eventStream)) *http.Response {
	t.Helper()
	s := &Server{cfg: Config{WriteTimeout: 5 * time.Second}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := s.stream(w)
		w.WriteHeader(http.StatusOK)
		es := events(st)
		defer es.close()
		fn(es)
	}))
	if writes != nil {
		srv.Listener = countingListener{srv.Listener, writes}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// Events sent at once from many goroutines arrive whole, one a line, each
// sender's in its order, however the writer batches them.
func TestEventStream(t *testing.T) {
	t.Parallel()
	const senders, each = 50, 40
	resp := eventServer(t, nil, func(es *eventStream) {
		var wg sync.WaitGroup
		for from := range senders {
			wg.Go(func() {
				for seq := range each {
					es.send(streamEvent{from, seq})
				}
			})
		}
		wg.Wait()
		es.send(streamEvent{-1, 0})
	})
	next := make([]int, senders)
	sc := bufio.NewScanner(resp.Body)
	n := 0
	for sc.Scan() {
		var ev streamEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d: %q: %v", n, sc.Text(), err)
		}
		n++
		if ev.From == -1 {
			if n != senders*each+1 {
				t.Fatalf("last event at line %d, want %d", n, senders*each+1)
			}
			continue
		}
		if ev.From < 0 || ev.From >= senders || ev.Seq != next[ev.From] {
			t.Fatalf("line %d: %+v, want sender %d's event %d", n, ev, ev.From, next[ev.From])
		}
		next[ev.From]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != senders*each+1 {
		t.Fatalf("%d events, want %d", n, senders*each+1)
	}
}

// An event reaches the client while the stream goes on: batching never
// holds one back until the end.
func TestEventStreamProgress(t *testing.T) {
	t.Parallel()
	seen := make(chan struct{}, 3)
	resp := eventServer(t, nil, func(es *eventStream) {
		for i := range 3 {
			es.send(streamEvent{0, i})
			select {
			case <-seen:
			case <-time.After(10 * time.Second):
				es.send(streamEvent{-1, i}) // tells the client it waited in vain
				return
			}
		}
	})
	sc := bufio.NewScanner(resp.Body)
	for i := range 3 {
		if !sc.Scan() {
			t.Fatalf("stream ended before event %d: %v", i, sc.Err())
		}
		var ev streamEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev != (streamEvent{0, i}) {
			t.Fatalf("event %d: %q (%v), want %+v", i, sc.Text(), err, streamEvent{0, i})
		}
		seen <- struct{}{}
	}
}

// Events that come one by one, faster than eventGap, share writes: the
// writer pauses eventGap after each, so it writes at most once per
// eventGap (plus the header's and the end's), not once per event.
func TestEventStreamBatches(t *testing.T) {
	t.Parallel()
	const n = 200
	var writes atomic.Int64
	var elapsed atomic.Int64 // ns
	resp := eventServer(t, &writes, func(es *eventStream) {
		start := time.Now()
		for i := range n {
			es.send(streamEvent{0, i})
			time.Sleep(100 * time.Microsecond)
		}
		elapsed.Store(int64(time.Since(start)))
	})
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(b), "\n"); lines != n {
		t.Fatalf("%d lines, want %d", lines, n)
	}
	// The handler has returned: elapsed is set.
	took := time.Duration(elapsed.Load())
	if got, most := writes.Load(), int64(took/eventGap)+3; got > most {
		t.Errorf("%d events in %v took %d writes, want at most %d", n, took, got, most)
	}
}

// A send after close, from a straggler, is dropped rather than a panic.
func TestEventStreamSendAfterClose(t *testing.T) {
	t.Parallel()
	late := make(chan *eventStream, 1)
	resp := eventServer(t, nil, func(es *eventStream) {
		es.send(streamEvent{0, 0})
		late <- es
	})
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	(<-late).send(streamEvent{0, 1}) // the handler has returned: es is closed
	if want := `{"from":0,"seq":0}` + "\n"; string(b) != want {
		t.Errorf("stream = %q, want %q", b, want)
	}
}
