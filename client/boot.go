package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
)

// Heartbeats tells the server that nodes are alive in their current boot.
func (c *Client) Heartbeats(ctx context.Context, hb api.Heartbeats) (api.HeartbeatReply, error) {
	var out api.HeartbeatReply
	return out, c.call(ctx, http.MethodPost, "/heartbeats", nil, hb, &out)
}

// History returns the reboot records of a set's nodes, newest first, at
// most limit (0: all).
func (c *Client) History(ctx context.Context, set, requester string, limit int) (api.RebootList, error) {
	q := url.Values{"set": {set}, "requester": {requester}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.RebootList
	return out, c.call(ctx, http.MethodGet, "/reboots", q, nil, &out)
}

// Batch returns the reboot records of one reboot request.
func (c *Client) Batch(ctx context.Context, batch string) (api.RebootList, error) {
	var out api.RebootList
	return out, c.call(ctx, http.MethodGet, "/reboots", url.Values{"batch": {batch}}, nil, &out)
}

// Wait waits until every node of req.Set is booted. progress, if not nil,
// gets each event. It returns the last event: WaitDone, or WaitTimeout
// naming the nodes still not booted.
func (c *Client) Wait(ctx context.Context, req api.WaitRequest, progress func(api.WaitEvent)) (api.WaitEvent, error) {
	resp, err := c.do(ctx, http.MethodPost, "/waits", nil, req)
	if err != nil {
		return api.WaitEvent{}, err
	}
	defer resp.Body.Close()
	var last api.WaitEvent
	err = readNDJSON(resp.Body, func(b []byte) (bool, error) {
		if err := json.Unmarshal(b, &last); err != nil {
			return false, fmt.Errorf("decode wait progress: %w", err)
		}
		if progress != nil {
			progress(last)
		}
		switch last.Type {
		case api.WaitError:
			return false, last.Error
		case api.WaitDone, api.WaitTimeout:
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return last, err
	}
	if last.Type != api.WaitDone && last.Type != api.WaitTimeout {
		if ctx.Err() != nil {
			return last, ctx.Err()
		}
		return last, errors.New("wait stream ended early")
	}
	return last, nil
}

// Logs reads the platform log: the last limit lines (0: all of them, -1:
// the server's default, 100), then, with follow, each new line until ctx
// ends or fn fails.
func (c *Client) Logs(ctx context.Context, limit int, follow bool, fn func(api.LogLine) error) error {
	q := url.Values{}
	if limit >= 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if follow {
		q.Set("follow", "true")
	}
	resp, err := c.do(ctx, http.MethodGet, "/logs", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = readNDJSON(resp.Body, func(b []byte) (bool, error) {
		var l api.LogLine
		if err := json.Unmarshal(b, &l); err != nil {
			return false, fmt.Errorf("decode log line: %w", err)
		}
		return true, fn(l)
	})
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// NewBootID returns a random id in the kernel's boot_id format, for
// agents that are not a real machine's (each start is a boot).
func NewBootID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// readNDJSON calls fn with each line until fn says stop or fails.
func readNDJSON(r io.Reader, fn func([]byte) (bool, error)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		more, err := fn(sc.Bytes())
		if err != nil || !more {
			return err
		}
	}
	return sc.Err()
}

// Reporter is the reporting side of node agents: it reports boots and
// then keeps the server told that the nodes are alive with heartbeats.
// One Reporter serves one agent (walt-node) or many simulated nodes
// (walt-lab), whose heartbeats then share requests.
type Reporter struct {
	c *Client
	// Backoff bounds the wait between report attempts; doubling from
	// one second. Default 30s.
	Backoff time.Duration
	// OnContext, if not nil, is called with a node's MAC (as the server
	// names it) and boot context each time the context kept for it
	// changes (see BootContext). It is called on the reporting goroutine,
	// outside the Reporter's lock; set it before the first report.
	OnContext func(mac string, bc api.BootContext)

	mu       sync.Mutex
	nodes    map[string]*reported       // by MAC; +checklocks:mu
	contexts map[string]api.BootContext // by MAC; +checklocks:mu
	interval time.Duration              // +checklocks:mu
}

type reported struct {
	rep   api.NodeReport
	alive func() bool
}

// beatsPerRequest bounds the heartbeats sent in one request.
const beatsPerRequest = 1000

// NewReporter returns a Reporter to the server at serverURL.
func NewReporter(serverURL string) (*Reporter, error) {
	c, err := New(serverURL, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	return &Reporter{c: c, Backoff: 30 * time.Second, nodes: map[string]*reported{}, contexts: map[string]api.BootContext{},
		interval: api.DefaultHeartbeatInterval}, nil
}

// Client returns the Reporter's client of the server, for the nodes' other
// calls (ReportDone).
func (p *Reporter) Client() *Client { return p.c }

// BootContext returns the last boot context the server gave for the node
// with that MAC, and whether there is one.
func (p *Reporter) BootContext(mac string) (api.BootContext, bool) {
	if hw, err := net.ParseMAC(mac); err == nil {
		mac = hw.String()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	bc, ok := p.contexts[mac]
	return bc, ok
}

// keepContext keeps the boot context of an accepted report and tells
// OnContext if it changed. A server that forgot why a boot happened (it
// restarted since) answers a second report of the same boot with the
// cause unknown: the context known from the first report is kept. again
// marks a report the heartbeats asked for, which a newer boot's report
// may have overtaken: its context is kept only for the boot still
// reported.
func (p *Reporter) keepContext(mac string, n api.Node, again bool) {
	if n.BootContext == nil {
		return
	}
	bc := *n.BootContext
	p.mu.Lock()
	old, had := p.contexts[mac]
	cur := p.nodes[mac]
	if again && (cur == nil || cur.rep.BootID != bc.BootID) ||
		had && old.BootID == bc.BootID && bc.BootID != "" && bc.Cause == api.BootCauseUnknown && old.Cause != api.BootCauseUnknown {
		p.mu.Unlock()
		return
	}
	p.contexts[mac] = bc
	p.mu.Unlock()
	if p.OnContext != nil && (!had || !reflect.DeepEqual(old, bc)) {
		p.OnContext(mac, bc)
	}
}

// retryable says whether a failed report may succeed later: the server
// was unreachable, unavailable or failing.
func retryable(err error) bool {
	var ae *api.Error
	return !errors.As(err, &ae) || ae.Code == api.CodeUnavailable || ae.Code == api.CodeInternal
}

// ErrBootEnded: the node left the boot a report was for before the
// server took the report; it was not sent again.
var ErrBootEnded = errors.New("the node left that boot")

// Report sends a boot report, retrying with backoff while the server is
// unreachable or failing, until it is accepted, refused as invalid, the
// node leaves that boot (alive says false: ErrBootEnded), or ctx ends. A
// report sent again after the node rebooted would tell a restarted
// server of a boot that is over. Once accepted, the node's heartbeats go
// with the others' (see Run) for as long as alive (nil: always) says it
// lives in that boot.
func (p *Reporter) Report(ctx context.Context, r api.NodeReport, alive func() bool) error {
	mac := r.MAC
	if hw, err := net.ParseMAC(mac); err == nil {
		mac = hw.String() // as the server names it
	}
	delay := time.Second
	for {
		n, err := p.c.ReportNode(ctx, r)
		if err == nil {
			p.keepContext(mac, n, false)
			break
		}
		if !retryable(err) {
			return fmt.Errorf("report node %s: %w", r.Name, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("report node %s: %w (last error: %v)", r.Name, ctx.Err(), err)
		case <-t.C:
		}
		if alive != nil && !alive() {
			return fmt.Errorf("report node %s, boot %s: %w (last error: %v)", r.Name, r.BootID, ErrBootEnded, err)
		}
		delay = min(2*delay, p.Backoff)
	}
	if r.BootID != "" {
		p.mu.Lock()
		p.nodes[mac] = &reported{rep: r, alive: alive}
		p.mu.Unlock()
	}
	return nil
}

// Run sends the heartbeats until ctx ends, at the interval the server
// asks for. Nodes whose alive function says false are dropped; nodes the
// server does not know in their boot are reported again.
func (p *Reporter) Run(ctx context.Context) {
	for {
		p.mu.Lock()
		interval := p.interval
		p.mu.Unlock()
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		p.beat(ctx)
	}
}

// beat sends one round of heartbeats.
func (p *Reporter) beat(ctx context.Context) {
	p.mu.Lock()
	var beats []api.Heartbeat
	reps := map[string]*reported{}
	for mac, n := range p.nodes {
		if n.alive != nil && !n.alive() {
			delete(p.nodes, mac)
			continue
		}
		beats = append(beats, api.Heartbeat{MAC: mac, BootID: n.rep.BootID})
		reps[mac] = n
	}
	p.mu.Unlock()
	for len(beats) > 0 {
		chunk := beats[:min(len(beats), beatsPerRequest)]
		beats = beats[len(chunk):]
		reply, err := p.c.Heartbeats(ctx, api.Heartbeats{Beats: chunk})
		if err != nil {
			continue // the next round tries again
		}
		if reply.Interval > 0 {
			p.mu.Lock()
			p.interval = time.Duration(reply.Interval)
			p.mu.Unlock()
		}
		for _, mac := range reply.Report {
			// The node may have left that boot since the round began.
			if rep, ok := reps[mac]; ok && (rep.alive == nil || rep.alive()) {
				if n, err := p.c.ReportNode(ctx, rep.rep); err == nil { // failing, it is asked again next round
					p.keepContext(mac, n, true)
				}
			}
		}
	}
}
