// Package history records reboots as they happen: the records of a
// request are added, state running and with their IDs, before any node is
// touched (BeginBatch), and each is completed, node by node, when its
// outcome is known (Finish). A server killed during a batch thus leaves a
// row for every node of it; the next start marks the rows it left running
// interrupted (Recover), as their outcome will never be known. Each record
// carries the id of the server that runs it, so that on a database shared
// by several servers a start leaves the others' records alone.
//
// Writes from concurrent pipelines are grouped: while one transaction is
// being written, the records that arrive wait and go together in the next
// one, so a batch of a thousand nodes costs a few transactions, not a
// thousand, and each caller still returns only once its record is stored.
package history

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/store"
)

// Store is what the recorder needs of the server's store.
type Store interface {
	AddReboots(ctx context.Context, rs []store.Reboot) ([]string, error)
	FinishReboots(ctx context.Context, rs []store.Reboot) error
	DeleteReboots(ctx context.Context, ids []string) error
	InterruptReboots(ctx context.Context, server string) (int, error)
}

// writeTimeout bounds one grouped write.
const writeTimeout = 30 * time.Second

// Recorder writes reboot records. It is safe for concurrent use and
// starts no goroutine: a caller that finds no write in progress writes
// the waiting records itself.
type Recorder struct {
	st     Store
	server string // stamped on every record added (store.Reboot.Server)
	log    *slog.Logger

	mu sync.Mutex
	// queue holds the operations waiting for the next write. +checklocks:mu
	queue []*op
	// writing: a caller is writing; the next one to arrive waits. +checklocks:mu
	writing bool
}

// op is one record waiting to be written.
type op struct {
	rec    store.Reboot
	finish bool // FinishReboots, else AddReboots
	id     string
	err    error
	// wake is closed when the record is written, or when the op is made
	// the next writer (lead).
	wake chan struct{}
	lead bool
}

// New returns a Recorder on st for the server whose id is server (empty
// for none): the records it adds carry it.
func New(st Store, server string, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{st: st, server: server, log: log}
}

// Recover marks the records the previous server of the same id left
// running interrupted, and those of no server (store.InterruptReboots).
// Call it once at start, before any reboot.
func (r *Recorder) Recover(ctx context.Context) error {
	n, err := r.st.InterruptReboots(ctx, r.server)
	if err != nil {
		return fmt.Errorf("reboot history: %w", err)
	}
	if n > 0 {
		r.log.Warn("reboots interrupted by the last stop, recorded as interrupted", "reboots", n)
	}
	return nil
}

// BeginBatch adds the records of a whole request as running, in one
// transaction, before any of its nodes is touched: a server killed from
// then on leaves a row for every node of the batch. It sets the State and
// Server of recs in place, rather than copy a request's thousands of
// records.
func (r *Recorder) BeginBatch(ctx context.Context, recs []store.Reboot) ([]string, error) {
	for i := range recs {
		recs[i].State, recs[i].Server = store.RebootRunning, r.server
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	return r.st.AddReboots(ctx, recs)
}

// Drop forgets a running record: that of a node the request found already
// being rebooted by another, whose record is the other's.
func (r *Recorder) Drop(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	return r.st.DeleteReboots(ctx, []string{id})
}

// Begin adds rec as running and returns its ID once it is stored.
func (r *Recorder) Begin(ctx context.Context, rec store.Reboot) (string, error) {
	rec.State, rec.Server = store.RebootRunning, r.server
	o := &op{rec: rec}
	r.do(ctx, o)
	return o.id, o.err
}

// Finish completes the record rec.ID with rec's outcome (state done). A
// record with no ID (a reboot that never started) is added complete.
func (r *Recorder) Finish(ctx context.Context, rec store.Reboot) (string, error) {
	rec.State, rec.Server = store.RebootDone, r.server
	o := &op{rec: rec, finish: rec.ID != ""}
	r.do(ctx, o)
	if o.finish {
		o.id = rec.ID
	}
	return o.id, o.err
}

// do queues o and returns once it is written, by this caller or another.
func (r *Recorder) do(ctx context.Context, o *op) {
	o.wake = make(chan struct{})
	r.mu.Lock()
	r.queue = append(r.queue, o)
	lead := !r.writing
	r.writing = true
	r.mu.Unlock()
	if !lead {
		<-o.wake
		if !o.lead {
			return // written by another
		}
	}
	// This caller writes what is queued, itself included, then hands the
	// pen to the first of those who came meanwhile.
	r.mu.Lock()
	q := r.queue
	r.queue = nil
	r.mu.Unlock()
	r.write(ctx, q, o)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) == 0 {
		r.writing = false
		return
	}
	next := r.queue[0]
	next.lead = true
	close(next.wake)
}

// write stores q's records, adds then completions, each kind in one
// transaction; if one fails, its records are tried one by one so that each
// gets its own error. It wakes every op of q but self.
func (r *Recorder) write(ctx context.Context, q []*op, self *op) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	var adds, finishes []*op
	for _, o := range q {
		if o.finish {
			finishes = append(finishes, o)
		} else {
			adds = append(adds, o)
		}
	}
	r.group(adds, func(os []*op) error {
		ids, err := r.st.AddReboots(ctx, records(os))
		for i, o := range os {
			if err == nil {
				o.id = ids[i]
			}
		}
		return err
	})
	r.group(finishes, func(os []*op) error { return r.st.FinishReboots(ctx, records(os)) })
	for _, o := range q {
		if o != self {
			close(o.wake)
		}
	}
}

// group runs fn on os, then on each op alone if that failed.
func (r *Recorder) group(os []*op, fn func([]*op) error) {
	if len(os) == 0 {
		return
	}
	err := fn(os)
	if err == nil || len(os) == 1 {
		for _, o := range os {
			o.err = err
		}
		return
	}
	for _, o := range os {
		o.err = fn([]*op{o})
	}
}

func records(os []*op) []store.Reboot {
	rs := make([]store.Reboot, len(os))
	for i, o := range os {
		rs[i] = o.rec
	}
	return rs
}

// FromResult is the record of an engine result: the one conversion from
// what the engine knows to what the history keeps, error codes included.
// Times are cut to the microsecond, in UTC, as the store keeps them, so
// that a record reads the same before and after it is stored.
func FromResult(res reboot.Result, batch, requester, cause string) store.Reboot {
	rec := store.Reboot{
		Batch: batch, Requester: requester, Cause: cause, NodeMAC: res.Node.MAC, NodeName: res.Node.Name, State: store.RebootDone,
		Method: res.Method, OK: res.OK, RequestedAt: stored(res.Requested), AckAt: stored(res.Ack), FinishedAt: stored(res.Finished),
	}
	for _, a := range res.Attempts {
		sa := store.Attempt{Method: a.Method, Started: stored(a.Started), Finished: stored(a.Finished)}
		if a.Err != nil {
			sa.Error, sa.Code = a.Err.Error(), reboot.ErrorCode(a.Err)
		}
		if a.Cut != nil {
			v := a.Cut.Verified
			sa.CutVerified, sa.Cut = &v, a.Cut.Detail
		}
		rec.Attempts = append(rec.Attempts, sa)
	}
	return rec
}

// MayHaveActed is reboot.Result.MayHaveActed for a finished record (as
// FromResult made it): whether the reboot may have acted on the node, by
// its outcome and the method and error code of each attempt. A record
// read without its attempts counts as having none.
func MayHaveActed(rec store.Reboot) bool {
	if rec.OK {
		return true
	}
	for _, a := range rec.Attempts {
		if !reboot.Untouched(a.Method, a.Code) {
			return true
		}
	}
	return false
}

// stored is t as the store returns it.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}
