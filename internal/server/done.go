package server

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/experiment"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// DoneReplier completes the answer to an accepted done report: the
// campaign iteration the report ended, if any, once the store holds it.
// The campaign engine, an observer of the boot tracker, provides it
// (SetDoneReplier); without one the answer is empty. It is called on the
// request's goroutine once the tracker has taken the report and told its
// observers (so the engine has heard it), with the request's context, the
// node's normalized MAC and the report as given to the tracker (At unset:
// the observers' copy has the tracker's time). An error is the answer
// instead (vocab.ErrUnavailable's kind: the node reports again).
type DoneReplier func(ctx context.Context, mac string, d boot.Done) (api.DoneReply, error)

// doneStoreWait bounds the wait of a done report's answer for the row
// that records it: a store slower than that gets the node to report
// again (walt-node done waits 10 s for an answer).
const doneStoreWait = 5 * time.Second

// doneReplier is the Server's DoneReplier, nil if none.
type doneReplier = atomic.Pointer[DoneReplier]

// SetDoneReplier sets the function that fills the answer to each accepted
// done report (POST /api/v1/node-done); nil removes it.
func (s *Server) SetDoneReplier(f DoneReplier) {
	if f == nil {
		s.doneReply.Store(nil)
		return
	}
	s.doneReply.Store(&f)
}

// checkDoneReport checks a done report whole and returns its normalized
// MAC.
func checkDoneReport(r api.DoneReport) (string, error) {
	if err := checkText("mac", r.MAC, maxAddrText, false); err != nil {
		return "", err
	}
	mac, err := checkMAC("mac", r.MAC)
	if err != nil {
		return "", err
	}
	if err := experiment.CheckDone(r); err != nil {
		return "", fieldError(err)
	}
	return mac, nil
}

// fieldError maps a refusal of the experiment rules to ErrInvalid naming
// its culprit.
func fieldError(err error) error {
	var fe *experiment.FieldError
	if errors.As(err, &fe) {
		return culprits(invalidf("%s", fe.Msg), []string{fe.Culprit})
	}
	return invalidf("%v", err)
}

// nodeDone serves POST /api/v1/node-done: the experiment of a node's
// current boot is done. A node the inventory does not hold is not found;
// a boot other than the node's current one is a conflict naming both.
func (s *Server) nodeDone(ctx context.Context, r api.DoneReport) (api.DoneReply, error) {
	mac, err := checkDoneReport(r)
	if err != nil {
		return api.DoneReply{}, err
	}
	d, err := s.store.Device(ctx, mac)
	switch {
	case errors.Is(err, vocab.ErrNotFound):
		return api.DoneReply{}, culprits(kindf(vocab.ErrNotFound, "mac %s: no such node", mac), []string{mac})
	case err != nil:
		return api.DoneReply{}, err
	case d.Type != store.TypeNode:
		return api.DoneReply{}, culprits(invalidf("mac %s: device %s is a %s, not a node", mac, d.Name, d.Type), []string{d.Name})
	}
	if err := s.checkDoneSource(ctx, d); err != nil {
		return api.DoneReply{}, err
	}
	done := boot.Done{BootID: r.BootID, Status: r.Status, Metrics: r.Metrics}
	switch err := s.boots.ReportDone(mac, done); {
	case errors.Is(err, boot.ErrUnknownNode):
		return api.DoneReply{}, culprits(kindf(vocab.ErrNotFound, "node %s: no boot reported to this server yet, so boot %s cannot be done", d.Name, r.BootID), []string{d.Name})
	case errors.Is(err, boot.ErrStaleBoot):
		return api.DoneReply{}, culprits(kindf(vocab.ErrConflict, "node %s: boot %s is not its current boot %s", d.Name, r.BootID, s.boots.BootID(mac)), []string{r.BootID})
	case err != nil:
		return api.DoneReply{}, err
	}
	s.log.Debug("node done", "node", d.Name, "mac", mac, "boot_id", r.BootID, "status", r.Status, "metrics", len(r.Metrics))
	if f := s.doneReply.Load(); f != nil {
		return (*f)(ctx, mac, done)
	}
	return api.DoneReply{}, nil
}
