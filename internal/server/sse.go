package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// Server-sent events (GET /api/v1/events) are a thin adapter over the
// event sources the CLI's streams read: the platform log that walt log
// show --follow reads (its lines also say which nodes changed boot state,
// the tracker logging every change), and a campaign's subscription that
// walt campaign follow reads. Both sources are pulled by the stream's own
// goroutine: the log from its ring in memory, the campaign from a
// subscription that drops a slow reader's events for a fresh state. A
// client that reads slowly only falls behind: once the log's ring has
// moved past it, it is told to resync; one that stops reading is cut
// within the write timeout (stream.go).

const (
	// ssePing is the interval of keep-alive comments on a quiet stream.
	ssePing = 15 * time.Second
	// sseGap is the pause after a burst of log lines: the lines and node
	// changes of a batch of reboots go in a few writes.
	sseGap = 20 * time.Millisecond
)

// sseWriter writes events on a stream; the first error sticks.
type sseWriter struct {
	st  *stream
	err error
}

func (w *sseWriter) event(typ, id string, v any) {
	if w.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		w.err = err
		return
	}
	msg := make([]byte, 0, len(b)+len(typ)+len(id)+24)
	if id != "" {
		msg = append(append(append(msg, "id: "...), id...), '\n')
	}
	msg = append(append(append(msg, "event: "...), typ...), '\n')
	msg = append(append(append(msg, "data: "...), b...), "\n\n"...)
	_, w.err = w.st.Write(msg)
}

func (w *sseWriter) flush() {
	if w.err == nil {
		w.err = w.st.Flush()
	}
}

// eventsQuery reads ?after= (or a reconnecting browser's Last-Event-ID)
// and ?campaign=. after is -1 when absent.
func eventsQuery(r *http.Request) (after int64, campaign string, err error) {
	if err := checkQuery(r, "after", "campaign"); err != nil {
		return 0, "", err
	}
	q := r.URL.Query()
	after = -1
	for _, v := range []struct{ name, value string }{{"after", q.Get("after")}, {"Last-Event-ID", r.Header.Get("Last-Event-ID")}} {
		if v.value == "" {
			continue
		}
		n, err := strconv.ParseInt(v.value, 10, 64)
		if err != nil || n < 0 {
			return 0, "", culprits(invalidf("%s: %.32q is not a log sequence number (0 or more)", v.name, v.value), []string{v.name})
		}
		after = n
		break
	}
	if campaign = q.Get("campaign"); campaign != "" {
		if _, err := checkCampaignID("campaign", campaign); err != nil {
			return 0, "", err
		}
	}
	return after, campaign, nil
}

// acquireEventStream takes one of the api.MaxEventStreams places.
func (s *Server) acquireEventStream() bool {
	if s.sseOpen.Add(1) > api.MaxEventStreams {
		s.sseOpen.Add(-1)
		return false
	}
	return true
}

// nodeMACs maps the nodes' names to their MACs.
func (s *Server) nodeMACs(ctx context.Context) (map[string]string, error) {
	devs, err := s.store.Devices(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(devs))
	for _, d := range devs {
		if d.Type == store.TypeNode {
			m[d.Name] = d.MAC
		}
	}
	return m, nil
}

// events serves GET /api/v1/events until the client leaves or the server
// shuts down.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	after, campaign, err := eventsQuery(r)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	if !s.acquireEventStream() {
		writeError(w, s.log, kindf(vocab.ErrUnavailable, "too many event streams open (at most %d): close some dashboards", api.MaxEventStreams))
		return
	}
	defer s.sseOpen.Add(-1)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.streams, cancel)()
	var camp <-chan api.CampaignEvent
	if campaign != "" {
		var stop func()
		if camp, stop, err = s.campaignFeed(ctx, campaign, true); err != nil {
			if ctx.Err() == nil {
				writeError(w, s.log, err)
			}
			return
		}
		defer stop()
	}
	macs, err := s.nodeMACs(ctx)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	plog := s.boots.Log()
	last := plog.Seq()
	if after >= 0 && after < last {
		last = after
	}
	st := s.stream(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	out := &sseWriter{st: st}
	out.event(api.SSEHello, "", api.EventsHello{LogSeq: last, Campaign: campaign})
	out.flush()
	ping := time.NewTicker(ssePing)
	defer ping.Stop()
	gap := time.NewTimer(0)
	defer gap.Stop()
	ended := false // the campaign's end was sent
	for out.err == nil {
		lines, added := plog.After(last)
		if len(lines) > 0 {
			last = s.sendLog(ctx, out, lines, last, macs)
			out.flush()
		}
		select {
		case <-added:
			gap.Reset(sseGap) // let a burst gather
			select {
			case <-gap.C:
			case <-ctx.Done():
				return
			}
		case ev, ok := <-camp:
			if !ok { // the campaign ended; a subscription may close without saying so
				if !ended {
					out.event(api.SSECampaign, "", api.CampaignEvent{Type: api.CampaignEventEnd, At: time.Now().UTC()})
					out.flush()
				}
				camp = nil
				continue
			}
			ended = ev.Type == api.CampaignEventEnd
			out.event(api.SSECampaign, "", ev)
			if len(camp) == 0 {
				if s.campaigns.Lagged(campaign, camp) {
					if c, err := s.campaignView(ctx, campaign); err == nil {
						out.event(api.SSECampaign, "", api.CampaignEvent{Type: api.CampaignEventState, At: time.Now().UTC(), Campaign: &c})
					}
				}
				out.flush()
			}
		case <-ping.C:
			if _, out.err = st.Write([]byte(": ping\n\n")); out.err == nil {
				out.flush()
			}
		case <-ctx.Done():
			return
		}
	}
}

// sendLog sends lines (those after last), then the new boot state of each
// node they name, and returns the last line's Seq. macs is reloaded once
// if a line names a node it does not know.
func (s *Server) sendLog(ctx context.Context, out *sseWriter, lines []store.LogLine, last int64, macs map[string]string) int64 {
	if lines[0].Seq > last+1 {
		out.event(api.SSEResync, "", api.Resync{What: "log", Reason: fmt.Sprintf("lines %d to %d were missed", last+1, lines[0].Seq-1)})
		out.event(api.SSEResync, "", api.Resync{What: "nodes", Reason: "log lines were missed"})
	}
	var changed []string
	for _, l := range lines {
		out.event(api.SSELog, strconv.FormatInt(l.Seq, 10), toAPILogLine(l))
		if l.Node != "" {
			changed = append(changed, l.Node)
		}
		last = l.Seq
	}
	slices.Sort(changed)
	reloaded := false
	for _, name := range slices.Compact(changed) {
		mac, ok := macs[name]
		if !ok && !reloaded {
			reloaded = true
			if m, err := s.nodeMACs(ctx); err == nil {
				clear(macs)
				for k, v := range m {
					macs[k] = v
				}
				mac, ok = macs[name]
			}
		}
		if !ok {
			continue // gone from the inventory
		}
		b, booted := s.boots.Status(mac)
		out.event(api.SSENode, "", api.NodeChange{Name: name, MAC: mac, Booted: booted, Boot: b})
	}
	return last
}
