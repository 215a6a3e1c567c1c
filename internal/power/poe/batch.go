package poe

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/walt-testbed/walt/internal/power"
)

// request is one call's outlets on one switch.
type request struct {
	ctx  context.Context
	ops  []*op
	done chan struct{} // closed by the batch when the ops' results are final
}

type batchKey struct {
	key   string
	cycle bool
}

// batch is the requests for one switch gathered during Config.Gather; they
// are sent together.
type batch struct {
	reqs []*request
}

// submit adds r to the batch gathering for its switch, opening one if none is.
func (d *Driver) submit(key string, cycle bool, r *request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := batchKey{key, cycle}
	b, ok := d.gathering[k]
	if !ok {
		b = &batch{}
		d.gathering[k] = b
		start := func() {
			d.mu.Lock()
			delete(d.gathering, k)
			reqs := b.reqs
			d.mu.Unlock()
			d.runBatch(key, cycle, reqs)
		}
		if d.cfg.Gather > 0 {
			time.AfterFunc(d.cfg.Gather, start)
		} else {
			go start()
		}
	}
	b.reqs = append(b.reqs, r)
}

const interruptedMsg = "interrupted while the port is off (recorded in the power journal: " +
	"switched on with the rest of its batch, or by the next restore)"

// runBatch handles the requests of one batch for one switch. A request whose
// context ends while its ports are off gets its result at once; its ports
// are switched on with the others of the batch, unless every request of the
// batch has ended: then the ports stay off, recorded in the journal.
func (d *Driver) runBatch(key string, cycle bool, reqs []*request) {
	// The semaphore bounds SNMP conversations, not power cycles: it is
	// released during poe.delay, so that 200 switches cycle together.
	d.sem <- struct{}{}
	held := true
	defer func() {
		if held {
			<-d.sem
		}
	}()

	var ops []*op
	for _, r := range reqs {
		ops = append(ops, r.ops...)
	}
	finished := map[*request]bool{}
	finish := func(r *request) {
		if !finished[r] {
			finished[r] = true
			close(r.done)
		}
	}
	defer func() {
		for _, r := range reqs {
			finish(r)
		}
	}()

	// The batch's context ends when every request's context has ended.
	ctx, cancel := context.WithCancel(context.WithoutCancel(reqs[0].ctx))
	defer cancel()
	interrupted := make(chan *request, len(reqs))
	var mu sync.Mutex
	left := len(reqs)
	for _, r := range reqs {
		stop := context.AfterFunc(r.ctx, func() {
			interrupted <- r
			mu.Lock()
			defer mu.Unlock()
			if left--; left == 0 {
				cancel()
			}
		})
		defer stop()
	}

	sw, err := d.lookup(ctx, key)
	if err != nil {
		failAll(ops, err)
		return
	}
	log := d.log.With("switch", sw.Name)
	for _, o := range ops {
		o.switchName = sw.Name
		if o.off && !sw.Reboots {
			o.fail(fmt.Errorf("poe.reboots is not enabled on %s: %w", sw.Name, power.ErrForbidden))
		}
	}
	st := d.state(key)
	offs, err := d.prepare(ctx, st, &sw, ops)
	if err != nil {
		failAll(live(ops), err)
		log.Warn("poe: switch failed", "outlets", len(live(ops)), "err", err)
		return
	}
	// offs are journalled and off; the other ops were switched on.
	d.clear(ctx, log, ops)
	if !cycle || len(offs) == 0 {
		return
	}

	// interrupt gives r its result now; its ports in offs are replaced by
	// copies, so that the batch may still switch them on.
	interrupt := func(r *request) {
		for i, o := range offs {
			if o.req == r {
				c := *o
				offs[i] = &c
				o.fail(fmt.Errorf("%s: %w", interruptedMsg, r.ctx.Err()))
			}
		}
		finish(r)
	}
	<-d.sem
	held = false
	delay := cmp.Or(sw.Delay, DefaultDelay)
	for _, o := range offs {
		delay = max(delay, o.minOff)
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for waiting := true; waiting; {
		if ctx.Err() != nil {
			// Every caller has gone: leave the ports to the journal.
			for _, r := range reqs {
				if !finished[r] {
					interrupt(r)
				}
			}
			log.Warn("poe: power-cycle interrupted while ports are off", "ports", len(offs))
			return
		}
		select {
		case r := <-interrupted:
			interrupt(r)
		case <-timer.C:
			waiting = false
		}
	}
	d.sem <- struct{}{}
	held = true
	st.mu.Lock()
	err = d.setOn(ctx, st, &sw, offs)
	st.mu.Unlock()
	if err != nil {
		failAll(offs, err)
	}
	d.clear(ctx, log, offs)
	if n := len(live(offs)); n < len(offs) {
		log.Warn("poe: ports not switched back on", "ports", len(offs)-n)
	}
}
