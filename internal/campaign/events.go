package campaign

import (
	"sync/atomic"
	"time"

	"github.com/walt-testbed/walt/api"
)

// sub is one follower of a campaign's events.
type sub struct {
	ch chan api.CampaignEvent
	// lagged: an event was dropped because the follower fell behind; it
	// gets a fresh state event once it has caught up.
	lagged atomic.Bool
}

// subBuffer is the events a follower may fall behind by.
const subBuffer = 4096

// subscribe adds a follower, whose first event is the campaign's state.
func (r *run) subscribe() (<-chan api.CampaignEvent, func(), bool) {
	s := &sub{ch: make(chan api.CampaignEvent, subBuffer)}
	r.mu.Lock()
	// The state and the registration at once: the follower gets every
	// event after that state, none before.
	c := r.apiCampaignLocked()
	s.ch <- api.CampaignEvent{Type: api.CampaignEventState, At: time.Now().UTC(), Campaign: &c}
	if r.subsDone { // the campaign has ended (its state, then the end), or the engine stopped
		ended := r.c.State != api.CampaignRunning
		r.mu.Unlock()
		if ended {
			s.ch <- api.CampaignEvent{Type: api.CampaignEventEnd, At: time.Now().UTC()}
		}
		close(s.ch)
		return s.ch, func() {}, true
	}
	r.subs[s] = true
	r.mu.Unlock()
	cancel := func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.subs[s] {
			delete(r.subs, s)
			close(s.ch)
		}
	}
	return s.ch, cancel, true
}

// Lagged reports whether the follower whose channel this is fell behind
// since the last call, and must be sent the campaign's state.
func (r *run) lagged(ch <-chan api.CampaignEvent) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.subs {
		if s.ch == ch {
			return s.lagged.Swap(false)
		}
	}
	return false
}

// publish sends an event to every follower without waiting: one that
// is behind loses it and is marked lagged.
func (r *run) publish(ev api.CampaignEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publishLocked(ev)
}

func (r *run) publishLocked(ev api.CampaignEvent) {
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	for s := range r.subs {
		select {
		case s.ch <- ev:
		default:
			s.lagged.Store(true)
		}
	}
}

// closeSubs ends every follower's stream.
func (r *run) closeSubs() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subsDone = true
	for s := range r.subs {
		close(s.ch)
		delete(r.subs, s)
	}
}

// Lagged reports whether the follower of campaign id reading ch missed
// events since the last call (it should then show the campaign's state,
// from Snapshot).
func (e *Engine) Lagged(id string, ch <-chan api.CampaignEvent) bool {
	e.mu.Lock()
	r := e.runs[id]
	e.mu.Unlock()
	return r != nil && r.lagged(ch)
}
