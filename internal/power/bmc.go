package power

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Cut is what a power source said of a power-cycle's cut.
type Cut struct {
	// Verified: the source read back the off state before power returned.
	Verified bool
	// Detail says how it was verified, or why it could not be.
	Detail string
}

// ErrNotCut: the power source still reports the power on after it was asked
// to cut it.
var ErrNotCut = errors.New("power cut not seen")

// Serial lets one request at a time reach each device (a BMC answers one
// session at a time, badly), while requests to different devices run at
// once. Its zero value is ready; it is safe for concurrent use.
type Serial struct {
	mu    sync.Mutex
	slots map[string]*slot // +checklocks:mu
}

type slot struct {
	ch    chan struct{}
	users int
}

// Do runs f alone among the calls for key, waiting its turn unless ctx
// ends first (then f is not run and ctx's error is returned).
func (s *Serial) Do(ctx context.Context, key string, f func() error) error {
	s.mu.Lock()
	if s.slots == nil {
		s.slots = make(map[string]*slot)
	}
	sl := s.slots[key]
	if sl == nil {
		sl = &slot{ch: make(chan struct{}, 1)}
		s.slots[key] = sl
	}
	sl.users++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if sl.users--; sl.users == 0 {
			delete(s.slots, key)
		}
		s.mu.Unlock()
	}()
	select {
	case sl.ch <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-sl.ch }()
	return f()
}

// A Chassis is one machine's power as a BMC controls it: switched on or
// off, and read back.
type Chassis interface {
	SetPower(ctx context.Context, on bool) error
	IsOn(ctx context.Context) (bool, error)
}

// Cycling says how CycleChassis waits.
type Cycling struct {
	// OffTime is the least time the power stays off once the source
	// reports it off (the node's power.off_time).
	OffTime time.Duration
	// Poll is the period of the state reads; Settle bounds the wait for
	// the state asked for to be read back.
	Poll, Settle time.Duration
}

// CycleChassis power-cycles c: off, until c reads back off (that is the
// verified cut), OffTime more, on, until c reads back on. name names the
// source in errors ("BMC 10.0.0.5:623"). A source that still reads on
// Settle after the power-off gets ErrNotCut, and is not switched on
// again (it is on).
func CycleChassis(ctx context.Context, c Chassis, name string, w Cycling) (Cut, error) {
	if err := c.SetPower(ctx, false); err != nil {
		return Cut{}, fmt.Errorf("%s: power off: %w", name, err)
	}
	offAt, err := awaitPower(ctx, c, false, w)
	if err != nil {
		return Cut{}, fmt.Errorf("%s: %w", name, err)
	}
	cut := Cut{Verified: true, Detail: fmt.Sprintf("%s read back the power off", name)}
	if err := sleepUntil(ctx, offAt.Add(w.OffTime)); err != nil {
		return cut, fmt.Errorf("%s: power left off: %w", name, err)
	}
	if err := c.SetPower(ctx, true); err != nil {
		return cut, fmt.Errorf("%s: power on: %w", name, err)
	}
	if _, err := awaitPower(ctx, c, true, w); err != nil {
		return cut, fmt.Errorf("%s: %w", name, err)
	}
	return cut, nil
}

// PowerOnChassis switches c on and waits until it reads back on.
func PowerOnChassis(ctx context.Context, c Chassis, name string, w Cycling) error {
	if err := c.SetPower(ctx, true); err != nil {
		return fmt.Errorf("%s: power on: %w", name, err)
	}
	if _, err := awaitPower(ctx, c, true, w); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// awaitPower reads c until it reports on (want true) or off, and returns
// when it did.
func awaitPower(ctx context.Context, c Chassis, want bool, w Cycling) (time.Time, error) {
	deadline := time.Now().Add(w.Settle)
	state := map[bool]string{true: "on", false: "off"}
	for {
		on, err := c.IsOn(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("read power state: %w", err)
		}
		if on == want {
			return time.Now(), nil
		}
		if !time.Now().Before(deadline) {
			if !want {
				return time.Time{}, fmt.Errorf("%w: power still on %s after the power-off", ErrNotCut, w.Settle)
			}
			return time.Time{}, fmt.Errorf("power still off %s after the power-on", w.Settle)
		}
		if err := sleepUntil(ctx, time.Now().Add(w.Poll)); err != nil {
			return time.Time{}, fmt.Errorf("wait for power %s: %w", state[want], err)
		}
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
