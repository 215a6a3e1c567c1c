package server

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/vocab"
)

// fuzzDevices are the devices a fuzzed report or heartbeat must not
// change: a switch, a virtual node, a real node and a device of unknown
// type (which a report may register as a node, as if new).
var fuzzDevices = []store.Device{
	{MAC: "52:54:00:00:70:01", Name: "sw1", IP: "192.168.152.2", Type: store.TypeSwitch},
	{MAC: "52:54:00:00:70:02", Name: "vm1", IP: "127.20.240.2", Type: store.TypeNode, Virtual: true, Owner: "alice"},
	{MAC: "52:54:00:00:70:03", Name: "rpi1", IP: "127.20.240.3", Type: store.TypeNode, Model: "rpi-b"},
	{MAC: "52:54:00:00:70:04", Name: "thing", IP: "192.168.152.4", Type: store.TypeUnknown},
}

// fuzzServer returns a server on a real SQLite file holding fuzzDevices.
func fuzzServer(f *testing.F) *Server {
	st, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), sqlite.FileName))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	for _, d := range fuzzDevices {
		if err := st.AddDevice(context.Background(), d); err != nil {
			f.Fatal(err)
		}
	}
	s, err := New(context.Background(), Config{Store: st, Reboot: reboot.DefaultConfig()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	return s
}

// inventoryOf returns every device by MAC.
func inventoryOf(t *testing.T, s *Server) map[string]store.Device {
	t.Helper()
	devs, err := s.store.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]store.Device, len(devs))
	for _, d := range devs {
		out[d.MAC] = d
	}
	return out
}

// FuzzNodeReport sends reports to the real handler function and store:
// no panic; a refused report changes nothing; an accepted one never
// changes the type of a switch, a virtual flag or a node's name, and what
// it stores passes the checks again.
func FuzzNodeReport(f *testing.F) {
	for _, d := range fuzzDevices {
		f.Add(d.MAC, "127.20.240.9", "evil", "rpi-b", "network", "boot-1", false)
		f.Add(d.MAC, d.IP, d.Name, "pc", "", "", true)
	}
	f.Add("52:54:00:00:70:09", "127.20.240.9", "", "rpi-4", "hybrid-volatile", "b", false)
	f.Add("00:00:00:00:00:00", "0.0.0.0", "all-nodes", "\x1b[2J", "floppy", "\x00", false)
	f.Add("ff-ff-ff-ff-ff-ff", "169.254.169.254", "..", strings.Repeat("m", 200), "network", "", true)
	f.Add("52:54:00:00:70:0a", "::ffff:127.0.0.1", "n.1", "Modèle", "hybrid-persistent", "id", false)
	s := fuzzServer(f)
	base := map[string]bool{}
	for _, d := range fuzzDevices {
		base[d.MAC] = true
	}
	f.Fuzz(func(t *testing.T, mac, ip, name, model, bootMode, bootID string, virtual bool) {
		before := inventoryOf(t, s)
		rep := api.NodeReport{MAC: mac, IP: ip, Name: name, Model: model, BootMode: bootMode, Virtual: virtual, BootID: bootID}
		n, err := s.nodeReport(context.Background(), rep)
		after := inventoryOf(t, s)
		if err != nil {
			if !errors.Is(err, vocab.ErrInvalid) && !errors.Is(err, vocab.ErrConflict) {
				t.Fatalf("nodeReport(%+v) = %v, want ErrInvalid or ErrConflict", rep, err)
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Fatalf("refused nodeReport(%+v) = %v changed the inventory:\n%s", rep, err, diff)
			}
			return
		}
		for m, old := range before {
			now := after[m]
			registered := old.Type == store.TypeUnknown // as if new
			if !registered && (now.Name != old.Name || now.Virtual != old.Virtual) || now.Owner != old.Owner {
				t.Fatalf("nodeReport(%+v) changed %s: %+v -> %+v", rep, old.Name, old, now)
			}
			if now.Type != old.Type && (old.Type != store.TypeUnknown || now.Type != store.TypeNode) {
				t.Fatalf("nodeReport(%+v) changed the type of %s from %s to %s", rep, old.Name, old.Type, now.Type)
			}
		}
		if _, err := checkMAC("mac", n.MAC); err != nil {
			t.Fatalf("nodeReport(%+v) stored mac %q: %v", rep, n.MAC, err)
		}
		if _, err := checkIP("ip", n.IP); err != nil {
			t.Fatalf("nodeReport(%+v) stored ip %q: %v", rep, n.IP, err)
		}
		if err := checkText("model", n.Model, maxModel, true); err != nil {
			t.Fatalf("nodeReport(%+v) stored model %q: %v", rep, n.Model, err)
		}
		if base[n.MAC] {
			// Give the base devices their first state back (IP, model,
			// type of the unknown device) for the next input.
			old := before[n.MAC]
			if !cmp.Equal(old, after[n.MAC]) {
				resetDevice(t, s, fuzzDeviceWithMAC(n.MAC))
			}
			return
		}
		if err := s.store.ForgetDevice(context.Background(), n.MAC); err != nil {
			t.Fatal(err)
		}
		s.boots.Forget(n.MAC)
	})
}

func fuzzDeviceWithMAC(mac string) store.Device {
	for _, d := range fuzzDevices {
		if d.MAC == mac {
			return d
		}
	}
	panic("no fuzz device " + mac)
}

func resetDevice(t *testing.T, s *Server, d store.Device) {
	t.Helper()
	ctx := context.Background()
	if err := s.store.ForgetDevice(ctx, d.MAC); err != nil {
		t.Fatal(err)
	}
	if err := s.store.AddDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	s.boots.Forget(d.MAC)
}

// FuzzHeartbeat sends heartbeats to the real handler function: no panic,
// the inventory never changes, a refused request names a field and only
// valid unicast MACs are asked to report.
func FuzzHeartbeat(f *testing.F) {
	f.Add("52:54:00:00:70:03", "boot-1", "52:54:00:00:70:01", "", uint8(1))
	f.Add("00:00:00:00:00:00", "x", "01:00:5e:00:00:01", "\x1b", uint8(3))
	f.Add("52-54-00-00-70-02", strings.Repeat("b", 200), "nope", "y", uint8(0))
	s := fuzzServer(f)
	// rpi1 is booted with boot id boot-1: its heartbeats are accepted.
	if _, err := s.nodeReport(context.Background(), api.NodeReport{MAC: "52:54:00:00:70:03", IP: "127.20.240.3", Name: "rpi1", Model: "rpi-b", BootID: "boot-1"}); err != nil {
		f.Fatal(err)
	}
	s.boots.Flush() // the report's sign of life, written by the tracker
	f.Fuzz(func(t *testing.T, mac1, boot1, mac2, boot2 string, copies uint8) {
		before := inventoryOf(t, s)
		req := api.Heartbeats{Beats: []api.Heartbeat{{MAC: mac1, BootID: boot1}}}
		for range copies % 4 {
			req.Beats = append(req.Beats, api.Heartbeat{MAC: mac2, BootID: boot2})
		}
		reply, err := s.heartbeats(context.Background(), req)
		if diff := cmp.Diff(before, inventoryOf(t, s)); diff != "" {
			t.Fatalf("heartbeats(%+v) changed the inventory:\n%s", req, diff)
		}
		if err != nil {
			var ce *culpritError
			if !errors.Is(err, vocab.ErrInvalid) || !errors.As(err, &ce) || !strings.HasPrefix(ce.names[0], "beats") && !strings.Contains(err.Error(), "beats[") {
				t.Fatalf("heartbeats(%+v) = %v, want ErrInvalid naming a beats field", req, err)
			}
			return
		}
		for _, m := range reply.Report {
			if _, err := checkMAC("report", m); err != nil {
				t.Fatalf("heartbeats(%+v) asks %q to report: %v", req, m, err)
			}
		}
	})
}
