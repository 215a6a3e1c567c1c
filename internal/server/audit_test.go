package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
)

// Every state-changing call is in the audit trail with its user, source,
// route, target and status, refused ones included, secrets excluded;
// reads are not; only admins read it, and a follower sees new entries.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.addNode(t, "rpi1", reboottest.OK)
	ctx := t.Context()
	if _, err := e.c.AddDevice(ctx, api.AddDevice{Name: "sw1", IP: "192.168.152.2", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.SetConfig(ctx, api.ConfigRequest{Set: "sw1", Settings: []string{"snmp.version=2", "snmp.community=t0p-s3cret"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Ownership(ctx, api.OwnershipRequest{Set: "rpi1", Action: "acquire", Requester: "alice"}); err != nil {
		t.Fatal(err)
	}
	bob := e.ClientAs(t, "bob")
	if _, err := bob.Reboot(ctx, api.RebootRequest{Set: "rpi1"}, nil); !errors.Is(err, api.ErrNotOwned) {
		t.Fatalf("reboot of alice's node by bob = %v, want not owned", err)
	}
	if _, err := bob.Reboot(ctx, api.RebootRequest{Set: "rpi1", Force: true}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Nodes(ctx, nil); err != nil { // a read: not recorded
		t.Fatal(err)
	}
	var got []api.AuditEntry
	if err := e.Client.Audit(ctx, 0, false, func(a api.AuditEntry) error { got = append(got, a); return nil }); err != nil {
		t.Fatal(err)
	}
	type row struct{ user, route, target string }
	var rows []row
	for _, a := range got {
		rows = append(rows, row{a.User, a.Route, a.Target})
		if a.Source != "127.0.0.1" || a.At.IsZero() || a.Seq == 0 {
			t.Errorf("entry %+v: want source 127.0.0.1, a time and a seq", a)
		}
		if strings.Contains(a.Target, "t0p-s3cret") {
			t.Errorf("entry %+v shows a setting's value", a)
		}
	}
	want := []row{
		{"admin", "POST /api/v1/devices", "name=sw1 ip=192.168.152.2"},
		{"admin", "POST /api/v1/config", "set=sw1 settings=snmp.version,snmp.community"},
		{"alice", "POST /api/v1/ownership", "acquire set=rpi1"},
		{"bob", "POST /api/v1/reboots", "set=rpi1"},
		{"bob", "POST /api/v1/reboots", "set=rpi1"},
	}
	if len(rows) != len(want) {
		t.Fatalf("audit trail = %+v, want %+v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
	if got[3].Status != 403 || got[4].Status != 200 {
		t.Errorf("statuses of bob's reboots: %d, %d; want 403 then 200", got[3].Status, got[4].Status)
	}
	if err := bob.Audit(ctx, 0, false, func(api.AuditEntry) error { return nil }); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("Audit as bob = %v, want forbidden", err)
	}
	// A follower gets the entries, then the new one.
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	seen := make(chan api.AuditEntry, 16)
	done := make(chan error, 1)
	go func() { done <- e.Client.Audit(fctx, 1, true, func(a api.AuditEntry) error { seen <- a; return nil }) }()
	if a := <-seen; a.Seq != got[4].Seq {
		t.Fatalf("follow's first entry = %+v, want the last one", a)
	}
	if _, err := e.c.Ownership(ctx, api.OwnershipRequest{Set: "rpi1", Action: "release", Requester: "alice"}); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-seen:
		if a.User != "alice" || a.Target != "release set=rpi1" {
			t.Errorf("followed entry = %+v", a)
		}
	case <-fctx.Done():
		t.Fatal("the follower never saw the new entry")
	}
	cancel()
	<-done
}
