package ipmi_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/power/ipmi"
	"github.com/walt-testbed/walt/internal/power/ipmi/ipmisim"
	"github.com/walt-testbed/walt/internal/testutil"
)

func driver(t *testing.T, logs *testutil.Buffer) *ipmi.Driver {
	t.Helper()
	cfg := ipmi.DefaultConfig()
	cfg.Timeout, cfg.Retries, cfg.Poll, cfg.Settle = 500*time.Millisecond, 1, 20*time.Millisecond, 2*time.Second
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, nil))
	}
	d, err := ipmi.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func target(b *ipmisim.BMC, off time.Duration) ipmi.Target {
	return ipmi.Target{Node: "pc1", Host: b.Host, Port: b.Port, User: ipmisim.User, Password: power.NewSecret(ipmisim.Password), OffTime: off}
}

// TestCycle: a power-cycle through ipmi_sim turns the machine off, reads
// the off state back (verified), keeps it off for the off time, and turns
// it on again.
func TestCycle(t *testing.T) {
	t.Parallel()
	b := ipmisim.Start(t, "127.62.0.1")
	cut, err := driver(t, nil).Cycle(t.Context(), target(b, 300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if !cut.Verified || !strings.Contains(cut.Detail, b.Host) {
		t.Errorf("cut = %+v, want verified by the BMC", cut)
	}
	ev := b.Events()
	if len(ev) != 2 || ev[0].On || !ev[1].On {
		t.Fatalf("BMC power events = %+v, want off then on", ev)
	}
	if off := ev[1].At.Sub(ev[0].At); off < 300*time.Millisecond {
		t.Errorf("power off for %s, want at least the off time 300ms", off)
	}
	if !b.On() {
		t.Error("machine left off")
	}
}

// TestCycleWithDefaults: with the default configuration (requests of 2 s,
// retried twice) a power-cycle of ipmi_sim without off time takes well
// under a request's timeout: opening the session waits for no request
// the BMC leaves unanswered (the library's cipher suite discovery took
// 6 s).
func TestCycleWithDefaults(t *testing.T) {
	t.Parallel()
	b := ipmisim.Start(t, "127.62.0.7")
	d, err := ipmi.New(ipmi.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := d.Cycle(t.Context(), target(b, 0)); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= 2*time.Second {
		t.Errorf("power-cycle took %s, want less than one request timeout (2s)", took)
	}
	if ev := b.Events(); len(ev) != 2 || ev[0].On || !ev[1].On {
		t.Errorf("BMC power events = %+v, want off then on", ev)
	}
}

// TestCycleNotCut: a BMC that accepts the power-off but still reports the
// power on fails the cycle with ErrNotCut, naming the BMC.
func TestCycleNotCut(t *testing.T) {
	t.Parallel()
	b := ipmisim.Start(t, "127.62.0.2")
	b.Stuck(true)
	cut, err := driver(t, nil).Cycle(t.Context(), target(b, 0))
	if !errors.Is(err, power.ErrNotCut) || !strings.Contains(err.Error(), "BMC "+target(b, 0).BMC()) {
		t.Fatalf("err = %v, want ErrNotCut naming the BMC", err)
	}
	if cut.Verified {
		t.Error("cut verified although the BMC kept the power on")
	}
}

// TestWrongPassword: a wrong password is refused by the BMC: ErrDenied,
// an error naming the BMC and the user, and neither password in the
// error or the log.
func TestWrongPassword(t *testing.T) {
	t.Parallel()
	b := ipmisim.Start(t, "127.62.0.3")
	logs := &testutil.Buffer{}
	tg := target(b, 0)
	tg.Password = power.NewSecret("Wr0ng-pa55word")
	_, err := driver(t, logs).Cycle(t.Context(), tg)
	if !errors.Is(err, power.ErrDenied) || !strings.Contains(err.Error(), tg.BMC()) || !strings.Contains(err.Error(), ipmisim.User) {
		t.Fatalf("err = %v, want ErrDenied naming the BMC and user", err)
	}
	for _, text := range []string{err.Error(), fmt.Sprintf("%v %+v %#v", tg, tg, tg), logs.String()} {
		if strings.Contains(text, "Wr0ng-pa55word") || strings.Contains(text, ipmisim.Password) {
			t.Errorf("password shown: %s", text)
		}
	}
	if len(b.Events()) != 0 {
		t.Error("the BMC switched power for a refused session")
	}
}

// TestUnreachable: nothing answers on the BMC's port: ErrUnreachable
// within the request timeout and retries.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	start := time.Now()
	_, err := driver(t, nil).Cycle(t.Context(), ipmi.Target{Node: "pc1", Host: "127.62.0.250", Port: 9, User: "u", Password: power.NewSecret("p")})
	if !errors.Is(err, power.ErrUnreachable) || !strings.Contains(err.Error(), "127.62.0.250:9") {
		t.Fatalf("err = %v, want ErrUnreachable naming the BMC", err)
	}
	t.Logf("failed after %s", time.Since(start))
}

// TestOneSessionPerBMC: cycles of one BMC run one after the other (the
// second one's off comes after the first one's on), cycles of two BMCs
// at once.
func TestOneSessionPerBMC(t *testing.T) {
	t.Parallel()
	b1, b2 := ipmisim.Start(t, "127.62.0.4"), ipmisim.Start(t, "127.62.0.5")
	d := driver(t, nil)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, b := range []*ipmisim.BMC{b1, b1, b2} {
		wg.Go(func() { _, errs[i] = d.Cycle(t.Context(), target(b, 200*time.Millisecond)) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ev1, ev2 := b1.Events(), b2.Events()
	if len(ev1) != 4 || ev1[0].On || !ev1[1].On || ev1[2].On || !ev1[3].On {
		t.Fatalf("BMC 1 events = %+v, want off, on, off, on (one cycle after the other)", ev1)
	}
	if len(ev2) != 2 || !ev2[0].At.Before(ev1[1].At) {
		t.Errorf("BMC 2 events = %+v, want its cycle beside BMC 1's first (off before %s)", ev2, ev1[1].At)
	}
}
