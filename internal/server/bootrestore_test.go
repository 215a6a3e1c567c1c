package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/store"
)

// A starting server gives a node's first boot the context of the reboot
// its predecessor left waiting for that boot, unless the reboot is older
// than the node's boot.timeout × (boot.retries + 1): by then the
// watchdog had given up, and the boot is not that reboot's.
func TestStartRestoresAwaitedBoots(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	ids := map[string]string{}
	env := servertest.New(t, nil, func(cfg *server.Config) {
		ctx := context.Background()
		st := cfg.Store
		zero := "0"
		for i, n := range []struct {
			name    string
			age     time.Duration
			retries *string
		}{
			{"fresh", time.Minute, nil},
			{"stale", 31 * time.Minute, nil},    // 180 s × (9 + 1) = 30 min
			{"noretry", 4 * time.Minute, &zero}, // 180 s × 1
		} {
			mac := "52:54:00:00:71:0" + string(rune('1'+i))
			if err := st.AddDevice(ctx, store.Device{MAC: mac, Name: n.name, IP: "127.0.0.1", Type: store.TypeNode, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			if n.retries != nil {
				if err := st.ApplyChanges(ctx, []store.DeviceChange{{MAC: mac, Set: map[string]*string{"boot.retries": n.retries}}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.SetBootStatuses(ctx, []store.BootStatus{{MAC: mac, BootID: "old", Booted: true, Since: now.Add(-time.Hour), RetriesLeft: -1}}); err != nil {
				t.Fatal(err)
			}
			at := now.Add(-n.age)
			id, err := st.AddReboots(ctx, []store.Reboot{{Batch: "b", Requester: "alice", Cause: api.CauseRebootRequested, NodeMAC: mac, NodeName: n.name,
				OK: true, Method: "soft-reboot", RequestedAt: at, AckAt: at, FinishedAt: at}})
			if err != nil {
				t.Fatal(err)
			}
			ids[n.name] = id[0]
		}
	})
	for name, want := range map[string]string{"fresh": api.BootCauseUser, "stale": api.BootCauseUnknown, "noretry": api.BootCauseUnknown} {
		d, err := env.Store.DeviceByName(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		n, err := env.Client.ReportNode(t.Context(), api.NodeReport{MAC: d.MAC, IP: "127.0.0.1", Name: name, Model: "rpi-b", BootID: "new"})
		if err != nil {
			t.Fatal(err)
		}
		bc := n.BootContext
		if bc == nil || bc.Cause != want {
			t.Errorf("%s: boot context %+v, want cause %q", name, bc, want)
			continue
		}
		if want == api.BootCauseUser && (bc.Requester != "alice" || bc.Method != "soft-reboot" || bc.RebootID != ids[name]) {
			t.Errorf("%s: boot context %+v, want alice's soft-reboot %s", name, bc, ids[name])
		}
	}
}
