package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/accounts/accountstest"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/server/servertest"
)

// sseEvent is one server-sent event.
type sseEvent struct{ typ, id, data string }

// sseStream reads the events of GET /api/v1/events.
type sseStream struct {
	resp *http.Response
	r    *bufio.Reader
}

// authGet gets url with token.
func authGet(t testing.TB, token, url string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func openEvents(t testing.TB, base, token, query string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+api.Prefix+"/events"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /events%s: %s %s", query, resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q, want text/event-stream", ct)
	}
	return &sseStream{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event (comments skipped).
func (s *sseStream) next() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.typ != "" {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			ev.typ = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			ev.id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[len("data: "):]
		}
	}
}

// until reads events until one satisfies ok, within 10 s.
func (s *sseStream) until(t testing.TB, what string, ok func(sseEvent) bool) sseEvent {
	t.Helper()
	timer := time.AfterFunc(10*time.Second, func() { s.resp.Body.Close() })
	defer timer.Stop()
	var seen []string
	for {
		ev, err := s.next()
		if err != nil {
			t.Fatalf("waiting for %s: %v (seen: %s)", what, err, strings.Join(seen, "; "))
		}
		if ok(ev) {
			return ev
		}
		seen = append(seen, ev.typ+" "+ev.data)
	}
}

func decode[T any](t *testing.T, ev sseEvent) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
		t.Fatalf("%s event %q: %v", ev.typ, ev.data, err)
	}
	return v
}

func reportSSENode(t *testing.T, env *servertest.Env, name, mac string) {
	t.Helper()
	if _, err := env.Client.ReportNode(t.Context(), api.NodeReport{MAC: mac, IP: "127.170.0.9", Name: name, Model: "rpi-b"}); err != nil {
		t.Fatal(err)
	}
}

// A node's boot reaches the stream as its log line (with the line's seq
// as the event id) and as the node's new state.
func TestEventsTellLogLinesAndNodeStates(t *testing.T) {
	t.Parallel()
	env := servertest.New(t, nil, nil)
	st := openEvents(t, env.URL, env.AdminToken, "")
	hello := decode[api.EventsHello](t, st.until(t, "hello", func(e sseEvent) bool { return e.typ == api.SSEHello }))
	reportSSENode(t, env, "node1", "52:54:00:aa:00:01")
	ev := st.until(t, "the log line", func(e sseEvent) bool { return e.typ == api.SSELog })
	l := decode[api.LogLine](t, ev)
	if l.Node != "node1" || l.Line != "node node1 is booted" || l.Seq != hello.LogSeq+1 || ev.id != "1" {
		t.Fatalf("log event id %q %+v, want node1's boot, seq %d", ev.id, l, hello.LogSeq+1)
	}
	c := decode[api.NodeChange](t, st.until(t, "the node change", func(e sseEvent) bool { return e.typ == api.SSENode }))
	if c.Name != "node1" || c.MAC != "52:54:00:aa:00:01" || !c.Booted || c.Boot == nil || c.Boot.State != api.StateBooted {
		t.Fatalf("node event %+v, want node1 booted", c)
	}
}

// ?after=N (or Last-Event-ID, a browser's reconnection) sends the lines
// after N again; lines older than the log's memory are not sent but
// announced by a resync.
func TestEventsResumeAfterASeqOrResync(t *testing.T) {
	t.Parallel()
	env := servertest.New(t, nil, nil)
	for i, name := range []string{"node1", "node2", "node3"} {
		reportSSENode(t, env, name, "52:54:00:aa:00:0"+string(rune('1'+i)))
	}
	st := openEvents(t, env.URL, env.AdminToken, "?after=1")
	if l := decode[api.LogLine](t, st.until(t, "line 2", func(e sseEvent) bool { return e.typ == api.SSELog })); l.Seq != 2 || l.Node != "node2" {
		t.Fatalf("first line after 1: %+v", l)
	}
	// A new server on the same store: lines 1 to 3 are only in the store.
	env.Server.Close()
	env2 := servertest.New(t, nil, func(c *server.Config) { c.Store = env.Store }) // its accounts too: env.AdminToken
	reportSSENode(t, env2, "node4", "52:54:00:aa:00:04")
	st2 := openEvents(t, env2.URL, env.AdminToken, "?after=1")
	ev := st2.until(t, "a resync", func(e sseEvent) bool { return e.typ == api.SSEResync || e.typ == api.SSELog })
	if r := decode[api.Resync](t, ev); ev.typ != api.SSEResync || r.What != "log" || !strings.Contains(r.Reason, "lines 2 to 3") {
		t.Fatalf("first event %s %s, want a resync of the log naming lines 2 to 3", ev.typ, ev.data)
	}
	if l := decode[api.LogLine](t, st2.until(t, "line 4", func(e sseEvent) bool { return e.typ == api.SSELog })); l.Seq != 4 {
		t.Fatalf("line after the resync: %+v, want seq 4", l)
	}
}

// With ?campaign=ID the stream carries the campaign's events, its state
// first; a campaign not running here is its state then its end.
func TestEventsOfACampaign(t *testing.T) {
	t.Parallel()
	env := servertest.New(t, nil, nil)
	reportSSENode(t, env, "node1", "52:54:00:aa:00:01")
	resp := authGet(t, env.AdminToken, env.URL+api.Prefix+"/events?campaign=12")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("events of an unknown campaign: %s, want 404", resp.Status)
	}
	c, err := env.Client.StartCampaign(t.Context(), api.CampaignRequest{Set: "node1", Repeat: 1, BootTimeout: api.Duration(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	st := openEvents(t, env.URL, env.AdminToken, "?campaign="+c.ID)
	first := decode[api.CampaignEvent](t, st.until(t, "a campaign event", func(e sseEvent) bool { return e.typ == api.SSECampaign }))
	if first.Type != api.CampaignEventState || first.Campaign == nil || first.Campaign.ID != c.ID {
		t.Fatalf("first campaign event %+v, want campaign %s's state", first, c.ID)
	}
	st.until(t, "the campaign's end", func(e sseEvent) bool {
		return e.typ == api.SSECampaign && decode[api.CampaignEvent](t, e).Type == api.CampaignEventEnd
	})
}

// Bad parameters are refused, naming the culprit.
func TestEventsRefuseBadParameters(t *testing.T) {
	t.Parallel()
	env := servertest.New(t, nil, nil)
	for _, tc := range []struct{ query, header, culprit string }{
		{"?after=-1", "", "after"},
		{"?after=x", "", "after"},
		{"", "12a", "Last-Event-ID"},
		{"?campaign=01", "", "campaign"},
		{"?follow=true", "", "follow"},
	} {
		req, _ := http.NewRequest(http.MethodGet, env.URL+api.Prefix+"/events"+tc.query, nil)
		req.Header.Set("Authorization", "Bearer "+env.AdminToken)
		if tc.header != "" {
			req.Header.Set("Last-Event-ID", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body api.ErrorBody
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode/100 != 4 || body.Error == nil || len(body.Error.Culprits) != 1 || body.Error.Culprits[0] != tc.culprit {
			t.Errorf("events%s (Last-Event-ID %q): %s %+v, want a 4xx naming %s", tc.query, tc.header, resp.Status, body.Error, tc.culprit)
		}
	}
}

// At most api.MaxEventStreams streams are open at once; the next is
// refused as unavailable, and a place freed is taken again.
func TestEventStreamsAreBounded(t *testing.T) {
	t.Parallel()
	env := servertest.New(t, nil, nil)
	streams := make([]*sseStream, api.MaxEventStreams)
	for i := range streams {
		streams[i] = openEvents(t, env.URL, env.AdminToken, "")
		streams[i].until(t, "hello", func(e sseEvent) bool { return e.typ == api.SSEHello })
	}
	_, err := env.Client.Health(t.Context()) // the API still answers
	if err != nil {
		t.Fatal(err)
	}
	resp := authGet(t, env.AdminToken, env.URL+api.Prefix+"/events")
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("stream %d: %s, want 503", api.MaxEventStreams+1, resp.Status)
	}
	streams[0].resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := authGet(t, env.AdminToken, env.URL+api.Prefix+"/events")
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a place freed is not taken again: %s", resp.Status)
		}
		time.Sleep(10 * time.Millisecond) // the server notices the client left
	}
}

// A stream ends when the server shuts down: Serve returns at once,
// cleanly, not after the shutdown grace.
func TestEventStreamEndsAtShutdown(t *testing.T) {
	t.Parallel()
	cfg := servertest.Config(t)
	cfg.ShutdownGrace = 20 * time.Second
	token := accountstest.NewTokens(t, cfg.Store).Admin
	srv, err := server.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	st := openEvents(t, "http://"+ln.Addr().String(), token, "")
	st.until(t, "hello", func(e sseEvent) bool { return e.typ == api.SSEHello })
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still waits for the event stream 10 s after shutdown began")
	}
	if _, err := st.next(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("stream after shutdown: %v, want its end", err)
	}
	t.Logf("shut down in %v", time.Since(start))
}

// A client that stops reading its stream slows nothing: the boots it
// would be told of are taken at full speed and another stream is told of
// every one.
func TestEventStreamNotReadBlocksNothing(t *testing.T) {
	t.Parallel()
	const boots = 1000
	env := servertest.New(t, nil, func(c *server.Config) { c.WriteTimeout = time.Second })
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
	}}
	stalled, err := d.DialContext(t.Context(), "tcp", strings.TrimPrefix(env.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if _, err := io.WriteString(stalled, "GET "+api.Prefix+"/events HTTP/1.1\r\nHost: walt\r\nAuthorization: Bearer "+env.AdminToken+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	reader := openEvents(t, env.URL, env.AdminToken, "")
	reader.until(t, "hello", func(e sseEvent) bool { return e.typ == api.SSEHello })
	start := time.Now()
	for i := range boots {
		// One node booting again and again: a new line and node event each time.
		if _, err := env.Client.ReportNode(t.Context(), api.NodeReport{MAC: "52:54:00:aa:00:01", IP: "127.173.255.1", Name: "node1", Model: "rpi-b"}); err != nil {
			t.Fatalf("boot %d: %v", i, err)
		}
	}
	took := time.Since(start)
	n := 0
	reader.until(t, "every boot", func(e sseEvent) bool {
		if e.typ == api.SSEResync {
			t.Fatalf("the reading stream resynced after %d boots", n)
		}
		if e.typ == api.SSELog {
			n++
		}
		return n == boots
	})
	t.Logf("%d boots in %v with a stream not read", boots, took)
}

// GET /node-sets resolves a set as a reboot would, naming what is wrong.
func TestNodeSetsResolveSets(t *testing.T) {
	t.Parallel()
	env := servertest.New(t, nil, nil)
	for i, name := range []string{"node1", "node2", "node3"} {
		reportSSENode(t, env, name, "52:54:00:aa:01:0"+string(rune('1'+i)))
	}
	if _, err := env.ClientAs(t, "alice").Ownership(t.Context(), api.OwnershipRequest{Set: "node3", Action: "acquire"}); err != nil {
		t.Fatal(err)
	}
	get := func(query string) (int, api.NodeSet, *api.Error) {
		resp := authGet(t, env.Token(t, "alice"), env.URL+api.Prefix+"/node-sets?"+query)
		defer resp.Body.Close()
		var ns api.NodeSet
		var eb api.ErrorBody
		if resp.StatusCode == http.StatusOK {
			json.NewDecoder(resp.Body).Decode(&ns)
		} else {
			json.NewDecoder(resp.Body).Decode(&eb)
		}
		return resp.StatusCode, ns, eb.Error
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"set=node[1-2]", []string{"node1", "node2"}},
		{"set=my-nodes&requester=alice", []string{"node3"}},
		{"set=free-nodes,node3", []string{"node1", "node2", "node3"}},
	} {
		if code, ns, _ := get(tc.query); code != http.StatusOK || strings.Join(ns.Nodes, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: %d %q, want %q", tc.query, code, ns.Nodes, tc.want)
		}
	}
	for _, tc := range []struct {
		query   string
		code    int
		culprit string
	}{
		{"set=node9", http.StatusNotFound, "node9"},
		{"set=node[1-", http.StatusBadRequest, ""},
		{"set=node1&force=true", http.StatusBadRequest, "force"},
	} {
		code, _, e := get(tc.query)
		if code != tc.code || e == nil || (tc.culprit != "" && (len(e.Culprits) != 1 || e.Culprits[0] != tc.culprit)) {
			t.Errorf("%s: %d %+v, want %d naming %q", tc.query, code, e, tc.code, tc.culprit)
		}
	}
}

// The dashboard's page and files are served without a token (they hold
// no data); its event stream, as every call it makes, needs one.
func TestDashboardIsOpenItsDataIsNot(t *testing.T) {
	t.Parallel()
	env := servertest.New(t, nil, nil)
	for path, want := range map[string]int{"/": http.StatusOK, "/ui/js/app.js": http.StatusOK,
		api.Prefix + "/events": http.StatusUnauthorized, api.Prefix + "/node-sets?set=all-nodes": http.StatusUnauthorized} {
		resp, err := http.Get(env.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without a token: %s, want %d", path, resp.Status, want)
		}
	}
}
