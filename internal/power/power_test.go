package power_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/testutil"
)

// TestSecretNeverPrinted: every way of printing a Secret shows Redacted.
func TestSecretNeverPrinted(t *testing.T) {
	t.Parallel()
	s := power.NewSecret("hunter2-pw")
	logs := &testutil.Buffer{}
	slog.New(slog.NewJSONHandler(logs, nil)).Info("x", "pw", s, "in", struct{ P power.Secret }{s})
	j, _ := json.Marshal(struct{ P power.Secret }{s})
	txt, _ := s.MarshalText()
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", s, s, s, s, s, s), logs.String(), string(j), string(txt),
		fmt.Sprintf("%+v %#v", struct{ P power.Secret }{s}, struct{ P power.Secret }{s})} {
		if strings.Contains(out, "hunter2") || strings.Contains(out, fmt.Sprintf("%x", "hunter2")) {
			t.Errorf("secret printed: %s", out)
		}
	}
	if s.Reveal() != "hunter2-pw" {
		t.Error("Reveal lost the secret")
	}
}

// TestSerial: calls for one key run one at a time, calls for different
// keys at once; a call waiting its turn gives up when its context ends.
func TestSerial(t *testing.T) {
	t.Parallel()
	var s power.Serial
	var inA, maxA atomic.Int32
	release := make(chan struct{})
	bStarted := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			_ = s.Do(t.Context(), "a", func() error {
				n := inA.Add(1)
				for m := maxA.Load(); n > m && !maxA.CompareAndSwap(m, n); m = maxA.Load() {
				}
				<-release
				inA.Add(-1)
				return nil
			})
		})
	}
	// "b" runs while "a" is held.
	go func() { _ = s.Do(t.Context(), "b", func() error { close(bStarted); return nil }) }()
	select {
	case <-bStarted:
	case <-time.After(5 * time.Second):
		t.Fatal("a call for another key waited")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	testutil.Eventually(t, 5*time.Second, "one call for a running", func() bool { return inA.Load() == 1 })
	if err := s.Do(ctx, "a", func() error { t.Error("ran after its context ended"); return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting call with ended context: %v", err)
	}
	close(release)
	wg.Wait()
	if maxA.Load() != 1 {
		t.Errorf("%d calls for one key at once, want 1", maxA.Load())
	}
}

// chassis is a power.Chassis in memory that takes lag to change state.
type chassis struct {
	mu      sync.Mutex
	on      bool
	target  bool
	since   time.Time
	lag     time.Duration
	ignores bool // ignores power-off
	offAt   time.Time
	onAt    time.Time
}

func (c *chassis) SetPower(_ context.Context, on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !on && c.ignores {
		return nil
	}
	c.target, c.since = on, time.Now()
	if on {
		c.onAt = time.Now()
	}
	return nil
}

func (c *chassis) IsOn(context.Context) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.on != c.target && time.Since(c.since) >= c.lag {
		c.on = c.target
		if !c.on {
			c.offAt = time.Now()
		}
	}
	return c.on, nil
}

// TestCycleChassis: the off time counts from the off state read back,
// not from the request; a source that never reads off fails ErrNotCut.
func TestCycleChassis(t *testing.T) {
	t.Parallel()
	c := &chassis{on: true, target: true, lag: 100 * time.Millisecond}
	w := power.Cycling{OffTime: 200 * time.Millisecond, Poll: 5 * time.Millisecond, Settle: time.Second}
	cut, err := power.CycleChassis(t.Context(), c, "BMC x", w)
	if err != nil || !cut.Verified {
		t.Fatalf("cycle: %+v, %v", cut, err)
	}
	if off := c.onAt.Sub(c.offAt); off < 200*time.Millisecond {
		t.Errorf("power on %s after the off state was seen, want the off time 200ms", off)
	}
	stuck := &chassis{on: true, target: true, ignores: true}
	w.Settle = 50 * time.Millisecond
	cut, err = power.CycleChassis(t.Context(), stuck, "BMC y", w)
	if !errors.Is(err, power.ErrNotCut) || cut.Verified || !strings.HasPrefix(err.Error(), "BMC y: ") || !stuck.onAt.IsZero() {
		t.Errorf("stuck source: %+v, %v; want ErrNotCut naming it, no power-on sent", cut, err)
	}
}
