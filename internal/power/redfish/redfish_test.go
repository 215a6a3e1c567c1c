package redfish_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/power/redfish"
	"github.com/walt-testbed/walt/internal/power/redfish/redfishsim"
	"github.com/walt-testbed/walt/internal/testutil"
)

func driver(t testing.TB, logs *testutil.Buffer) *redfish.Driver {
	t.Helper()
	cfg := redfish.DefaultConfig()
	cfg.Timeout, cfg.Poll, cfg.Settle = time.Second, 10*time.Millisecond, time.Second
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, nil))
	}
	d, err := redfish.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func target(t testing.TB, rawURL string, off time.Duration) redfish.Target {
	t.Helper()
	u, err := redfish.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return redfish.Target{Node: "pc1", URL: u, User: redfishsim.User, Password: power.NewSecret(redfishsim.Password), OffTime: off}
}

// TestCycle: through the service URL (its one system found) and through
// the system's URL, a power-cycle is ForceOff, PowerState read back Off
// (through PoweringOff: verified), the off time, On, PowerState On.
func TestCycle(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", redfishsim.SystemPath} {
		b := redfishsim.Start(t, "127.62.1.1")
		b.Delay(50 * time.Millisecond)
		cut, err := driver(t, nil).Cycle(t.Context(), target(t, b.URL+path, 200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if !cut.Verified || !strings.Contains(cut.Detail, b.URL) {
			t.Errorf("cut = %+v, want verified by the BMC", cut)
		}
		ev := b.Events()
		if len(ev) != 2 || ev[0].ResetType != "ForceOff" || ev[1].ResetType != "On" {
			t.Fatalf("resets = %+v, want ForceOff then On", ev)
		}
		// Off is read back after the 50 ms PoweringOff, then 200 ms off.
		if off := ev[1].At.Sub(ev[0].At); off < 250*time.Millisecond {
			t.Errorf("On %s after ForceOff, want at least 250ms (power-off delay + off time)", off)
		}
		if !b.On() {
			t.Error("system left off")
		}
	}
}

// TestCycleNotCut: a BMC that accepts ForceOff but stays On fails the
// cycle with ErrNotCut, naming the BMC, and is not sent On.
func TestCycleNotCut(t *testing.T) {
	t.Parallel()
	b := redfishsim.Start(t, "127.62.1.2")
	b.Stuck(true)
	cut, err := driver(t, nil).Cycle(t.Context(), target(t, b.URL, 0))
	if !errors.Is(err, power.ErrNotCut) || !strings.Contains(err.Error(), "BMC "+b.URL) || cut.Verified {
		t.Fatalf("cut, err = %+v, %v; want ErrNotCut naming the BMC, not verified", cut, err)
	}
	if ev := b.Events(); len(ev) != 1 {
		t.Errorf("resets = %+v, want the ForceOff only", ev)
	}
}

// TestWrongPassword: ErrDenied naming the BMC and user, nothing reset,
// no password in the error or the log.
func TestWrongPassword(t *testing.T) {
	t.Parallel()
	b := redfishsim.Start(t, "127.62.1.3")
	logs := &testutil.Buffer{}
	tg := target(t, b.URL, 0)
	tg.Password = power.NewSecret("Wr0ng-rf-pa55")
	_, err := driver(t, logs).Cycle(t.Context(), tg)
	if !errors.Is(err, power.ErrDenied) || !strings.Contains(err.Error(), b.URL) || !strings.Contains(err.Error(), redfishsim.User) {
		t.Fatalf("err = %v, want ErrDenied naming the BMC and user", err)
	}
	if b.Denied() == 0 || len(b.Events()) != 0 {
		t.Errorf("BMC denied %d requests and accepted %d resets; want some denied, none accepted", b.Denied(), len(b.Events()))
	}
	for _, text := range []string{err.Error(), fmt.Sprintf("%v %+v %#v", tg, tg, tg), logs.String()} {
		if strings.Contains(text, "Wr0ng-rf-pa55") || strings.Contains(text, redfishsim.Password) {
			t.Errorf("password shown: %s", text)
		}
	}
}

// TestOneRequestPerBMC: cycles of one BMC run one after the other, of two
// BMCs at once.
func TestOneRequestPerBMC(t *testing.T) {
	t.Parallel()
	b1, b2 := redfishsim.Start(t, "127.62.1.4"), redfishsim.Start(t, "127.62.1.5")
	d := driver(t, nil)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, b := range []*redfishsim.BMC{b1, b1, b2} {
		wg.Go(func() { _, errs[i] = d.Cycle(t.Context(), target(t, b.URL, 200*time.Millisecond)) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ev1, ev2 := b1.Events(), b2.Events()
	if len(ev1) != 4 || ev1[0].ResetType != "ForceOff" || ev1[1].ResetType != "On" || ev1[2].ResetType != "ForceOff" {
		t.Fatalf("BMC 1 resets = %+v, want ForceOff, On, ForceOff, On", ev1)
	}
	if len(ev2) != 2 || !ev2[0].At.Before(ev1[1].At) {
		t.Errorf("BMC 2 resets = %+v, want its cycle beside BMC 1's first", ev2)
	}
}

// TestRedirectNotFollowed: a BMC redirecting elsewhere does not get the
// credentials sent on: the driver fails on the redirect.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var got []string
	var mu sync.Mutex
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	t.Cleanup(elsewhere.Close)
	redir := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/redfish/v1/", http.StatusFound))
	t.Cleanup(redir.Close)
	if _, err := driver(t, nil).Cycle(t.Context(), target(t, redir.URL, 0)); err == nil {
		t.Fatal("cycle through a redirecting BMC succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 0 {
		t.Errorf("the redirect was followed: %d requests elsewhere", len(got))
	}
}

// TestSelfSignedCertificate: a BMC with a self-signed certificate is
// refused, the error saying why and what to do; with Insecure
// (redfish.insecure=true) the cycle goes through.
func TestSelfSignedCertificate(t *testing.T) {
	t.Parallel()
	b := redfishsim.StartTLS(t, "127.62.1.6")
	tg := target(t, b.URL, 0)
	if _, err := driver(t, nil).Cycle(t.Context(), tg); err == nil || !strings.Contains(err.Error(), "redfish.insecure=true") {
		t.Fatalf("self-signed BMC: %v, want refused naming redfish.insecure", err)
	}
	if len(b.Events()) != 0 || b.Denied() != 0 {
		t.Fatal("the BMC got requests over an unverified connection")
	}
	tg.Insecure = true
	cut, err := driver(t, nil).Cycle(t.Context(), tg)
	if err != nil || !cut.Verified {
		t.Fatalf("insecure: %+v, %v", cut, err)
	}
}

// TestParseURL: what redfish.url takes and what it refuses, each refusal
// naming its rule.
func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"https://10.0.0.5", "http://bmc-1.lab:8000/", "https://[fe80::1]/redfish/v1", "https://bmc/redfish/v1/Systems/Self"} {
		if u, err := redfish.ParseURL(s); err != nil || u.String() != s {
			t.Errorf("ParseURL(%q) = %v, %v; want it taken as it is", s, u, err)
		}
	}
	for s, want := range map[string]string{
		"https://bm\xc3\xa9c":                 "printable ASCII",
		"https://bmc/redfish/v1/\x8a":         "byte 23 is 0x8a",
		"https://bmc /":                       "printable ASCII",
		"https://b%41mc":                      "not a URL",
		"https://b!mc":                        "neither an IP address nor a DNS name",
		"https://admin:pw@bmc":                "credentials",
		"https://bmc/x":                       "path must be",
		"ftp://bmc":                           "scheme",
		"https://bmc:99999":                   "not a TCP port",
		"https://" + strings.Repeat("a", 600): "1 to 512",
	} {
		_, err := redfish.ParseURL(s)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "pw") {
			t.Errorf("ParseURL(%.40q) = %v, want an error saying %q", s, err, want)
		}
	}
}
