package server_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
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
	if err != nil || len(res) != 1 || res[0].Node != "a1" || len(ag.Reboots()) != 1 {
		t.Errorf("Reboot(64000 x a[1]) = %+v, %v, %d reboots; want a1 rebooted once", res, err, len(ag.Reboots()))
	}
}
