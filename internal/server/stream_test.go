package server

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// streamEvent is what TestEventStream's handler sends.
type streamEvent struct {
	From int `json:"from"`
	Seq  int `json:"seq"`
}

// eventServer serves, on real TCP, a stream whose events come from fn.
func eventServer(t *testing.T, fn func(es *eventStream)) *http.Response {
	t.Helper()
	s := &Server{cfg: Config{WriteTimeout: 5 * time.Second}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := s.stream(w)
		w.WriteHeader(http.StatusOK)
		es := events(st)
		defer es.close()
		fn(es)
	}))
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
	resp := eventServer(t, func(es *eventStream) {
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
	resp := eventServer(t, func(es *eventStream) {
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
