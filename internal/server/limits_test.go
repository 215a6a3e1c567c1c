package server_test

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/accounts/accountstest"
	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/server/servertest"
)

// TestHostileSetsRefusedFast: every endpoint that resolves a set refuses
// at once, naming the bound, a 4.4 KB set that used to cost 32 s of CPU
// (400 copies of a[0-99998]), and takes 64000 copies of a[1] as one node.
func TestHostileSetsRefusedFast(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ag := e.addNode(t, "a1", reboottest.OK)
	huge := strings.TrimSuffix(strings.Repeat("a[0-99998],", 400), ",")
	calls := map[string]func(set string) error{
		"reboot": func(set string) error {
			_, err := e.c.Reboot(t.Context(), api.RebootRequest{Set: set, Requester: "bob"}, nil)
			return err
		},
		"config": func(set string) error { _, err := e.c.Config(t.Context(), set, "bob", true); return err },
		"ownership": func(set string) error {
			_, err := e.c.Ownership(t.Context(), api.OwnershipRequest{Set: set, Requester: "bob", Action: "acquire"})
			return err
		},
		"wait": func(set string) error {
			_, err := e.c.Wait(t.Context(), api.WaitRequest{Set: set, Requester: "bob", Timeout: api.Duration(time.Nanosecond)}, nil)
			return err
		},
		"history": func(set string) error { _, err := e.c.History(t.Context(), set, "bob", 0); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call(huge)
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("%s(400 x a[0-99998]) took %s, want well under 2s", name, elapsed)
		}
		if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "more than 100000 names") {
			t.Errorf("%s(400 x a[0-99998]) = %v, want an invalid request naming the bound of 100000 names", name, err)
		}
	}
	res, err := e.c.Reboot(t.Context(), api.RebootRequest{Set: strings.TrimSuffix(strings.Repeat("a[1],", 64000), ","), Requester: "bob"}, nil)
	if err != nil || len(res) != 1 || res[0].Node != "a1" || !res[0].OK {
		t.Fatalf("Reboot(64000 x a[1]) = %+v, %v; want a1 rebooted", res, err)
	}
	<-ag.Rebooted()
	if got := len(ag.Reboots()); got != 1 {
		t.Errorf("Reboot(64000 x a[1]): a1 got %d REBOOTs, want 1", got)
	}
}

// TestRequestNumberBounds: the wait timeout and link ports of requests are
// bounded, the bound named in the error. A wait of 1<<62 ns used to be
// taken, and a link to port 1<<40 stored (PostgreSQL's INTEGER cannot
// even hold it).
func TestRequestNumberBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.addNode(t, "b1", reboottest.OK) // booted: a wait accepted ends at once
	if _, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: "sw1", IP: "127.20.255.9", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	for timeout, want := range map[time.Duration]string{
		1 << 62:                 "timeout: must be between 0s and 24h (got 1281023h53m38.427387904s)",
		24*time.Hour + 1:        "timeout: must be between 0s and 24h (got 24h0m0.000000001s)",
		-time.Second:            "timeout: must be between 0s and 24h (got -1s)",
		time.Duration(-1 << 63): "timeout: must be between 0s and 24h (got -2562047h47m16.854775808s)",
	} {
		_, err := e.c.Wait(t.Context(), api.WaitRequest{Set: "b1", Requester: "bob", Timeout: api.Duration(timeout)}, nil)
		if !errors.Is(err, api.ErrInvalid) || err.Error() != want {
			t.Errorf("Wait(timeout %d) = %v, want invalid %q", timeout, err, want)
		}
	}
	if last, err := e.c.Wait(t.Context(), api.WaitRequest{Set: "b1", Requester: "bob", Timeout: api.Duration(24 * time.Hour)}, nil); err != nil || last.Type != api.WaitDone {
		t.Errorf("Wait(timeout 24h) = %+v, %v; want done", last, err)
	}
	for port, want := range map[int]string{
		4097:    "port: must be between 1 and 4096 (got 4097)",
		1 << 40: "port: must be between 1 and 4096 (got 1099511627776)",
		0:       "port: must be between 1 and 4096 (got 0)",
		-3:      "port: must be between 1 and 4096 (got -3)",
	} {
		if err := e.c.SetLink(t.Context(), api.Link{Node: "b1", Switch: "sw1", Port: port}); !errors.Is(err, api.ErrInvalid) || err.Error() != want {
			t.Errorf("SetLink(port %d) = %v, want invalid %q", port, err, want)
		}
	}
	if err := e.c.SetLink(t.Context(), api.Link{Node: "b1", Switch: "sw1", Port: 4096}); err != nil {
		t.Errorf("SetLink(port 4096) = %v", err)
	}
	if _, err := e.c.Reboots(t.Context(), "b1", api.MaxLimit+1); !errors.Is(err, api.ErrInvalid) || err.Error() != "limit: must be between 0 and 1000000 (got 1000001)" {
		t.Errorf("Reboots(limit %d) = %v, want invalid naming the bound", api.MaxLimit+1, err)
	}
	for _, q := range []string{"limit=-1", "limit=99999999999999999999", "limit=x"} {
		resp, err := accountstest.Get(t, e.URL+api.Prefix+"/logs?"+q, e.AdminToken)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "limit") {
			t.Errorf("GET /logs?%s = %s %s, want 400 naming the limit", q, resp.Status, body)
		}
	}
}

// TestSettingOverflowsRefused: the settings of the hardening issue, end
// to end: refused, nothing stored.
func TestSettingOverflowsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.addNode(t, "o1", reboottest.OK)
	for _, v := range []string{"9223372036854775807", "10000000000", "18446744074"} {
		_, err := e.c.SetConfig(t.Context(), api.ConfigRequest{Set: "o1", Requester: "bob", Settings: []string{"boot.timeout=" + v}})
		if want := "boot.timeout: must be between 60s and 86400s (got " + v + ")"; !errors.Is(err, api.ErrInvalid) || err.Error() != want {
			t.Errorf("SetConfig(boot.timeout=%s) = %v, want invalid %q", v, err, want)
		}
	}
	if settings, err := e.store.Settings(t.Context()); err != nil || len(settings) != 0 {
		t.Errorf("stored settings %v (%v), want none", settings, err)
	}
}

// TestRescanIgnoresImpossiblePorts: a switch that reports a neighbour on a
// port beyond LLDP's 4096 gets it ignored, with a message, not recorded.
func TestRescanIgnoresImpossiblePorts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, servertest.WithPoE(t))
	reportNode(t, e, "p1", "02:67:00:00:00:01", "127.67.0.1")
	reportNode(t, e, "p2", "02:67:00:00:00:02", "127.67.0.2")
	e.AddSwitch(t, "sw1", "127.67.255.1", snmpswitch.Config{Neighbours: []snmpswitch.Neighbour{
		{LocalPort: 1, MAC: hw("02:67:00:00:00:01"), SysName: "p1"},
		{LocalPort: 5000, MAC: hw("02:67:00:00:00:02"), SysName: "p2"},
	}}, "lldp.explore=true")
	res, err := e.c.Rescan(t.Context(), api.RescanRequest{Requester: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	want := `sw1: neighbour "p2" ignored: port: must be between 1 and 4096 (got 5000).`
	if len(res.Changes) != 1 || res.Changes[0].Device != "p1" || !slices.Contains(res.Messages, want) {
		t.Errorf("rescan = changes %+v, messages %q; want p1 recorded, and %q", res.Changes, res.Messages, want)
	}
}
