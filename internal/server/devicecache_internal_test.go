package server

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/vocab"
)

// countingStore counts device reads, and may hold one after it has read.
type countingStore struct {
	store.Store
	reads atomic.Int64
	// hold, if not nil, is called after a read, before it returns.
	hold func()
}

func (s *countingStore) Device(ctx context.Context, mac string) (store.Device, error) {
	s.reads.Add(1)
	d, err := s.Store.Device(ctx, mac)
	if s.hold != nil {
		s.hold()
	}
	return d, err
}

func newCacheStore(t *testing.T) *countingStore {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &countingStore{Store: st}
}

const cacheMAC = "52:54:00:00:c1:01"

func cacheNode() store.Device {
	now := time.Now().UTC().Truncate(time.Second)
	return store.Device{MAC: cacheMAC, Name: "c1", IP: "127.30.0.1", Type: store.TypeNode, Model: "rpi-b", BootMode: "network",
		Booted: true, CreatedAt: now, LastSeen: now}
}

// A device's entry is what the store holds, Booted and LastSeen apart,
// after each kind of device write, whatever its outcome; between writes
// it is read from the store once.
func TestDeviceCacheWrites(t *testing.T) {
	t.Parallel()
	switchType := store.TypeSwitch
	owner, name := "bob", "c1-renamed"
	for _, tc := range []struct {
		name  string
		write func(ctx context.Context, c *deviceCache) error
	}{
		{"report from another address", func(ctx context.Context, c *deviceCache) error {
			d := cacheNode()
			d.IP = "127.30.0.2"
			_, err := c.ReportDevice(ctx, d)
			return err
		}},
		{"report refused", func(ctx context.Context, c *deviceCache) error {
			d := cacheNode()
			d.Virtual = true // a report cannot change it: ErrConflict
			_, err := c.ReportDevice(ctx, d)
			if !errors.Is(err, vocab.ErrConflict) {
				t.Errorf("ReportDevice(virtual) = %v, want a conflict", err)
			}
			return nil
		}},
		{"owner", func(ctx context.Context, c *deviceCache) error {
			return c.ApplyChanges(ctx, []store.DeviceChange{{MAC: cacheMAC, Owner: &owner}})
		}},
		{"rename and type", func(ctx context.Context, c *deviceCache) error {
			return c.ApplyChanges(ctx, []store.DeviceChange{{MAC: cacheMAC, Name: &name, Type: &switchType}})
		}},
		{"forget", func(ctx context.Context, c *deviceCache) error { return c.ForgetDevice(ctx, cacheMAC) }},
		{"forget and add", func(ctx context.Context, c *deviceCache) error {
			if err := c.ForgetDevice(ctx, cacheMAC); err != nil {
				return err
			}
			return c.AddDevice(ctx, store.Device{MAC: cacheMAC, Name: "sw1", IP: "127.30.0.9", Type: store.TypeSwitch, CreatedAt: time.Now()})
		}},
		{"add refused", func(ctx context.Context, c *deviceCache) error {
			// The MAC is taken: the entry goes all the same.
			if err := c.AddDevice(ctx, store.Device{MAC: cacheMAC, Name: "other", IP: "127.30.0.9", Type: store.TypeSwitch, CreatedAt: time.Now()}); !errors.Is(err, vocab.ErrConflict) {
				t.Errorf("AddDevice(taken MAC) = %v, want a conflict", err)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st := newCacheStore(t)
			c := newDeviceCache(st, false)
			if _, err := c.ReportDevice(ctx, cacheNode()); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if _, err := c.node(ctx, cacheMAC); err != nil {
					t.Fatal(err)
				}
			}
			if n := st.reads.Load(); n != 0 {
				t.Fatalf("%d store reads after a first report, want 0: the report's row is kept", n)
			}
			if err := tc.write(ctx, c); err != nil {
				t.Fatal(err)
			}
			want, wantErr := st.Store.Device(ctx, cacheMAC)
			for range 2 {
				got, err := c.node(ctx, cacheMAC)
				if !errors.Is(err, vocab.ErrNotFound) || wantErr == nil {
					if err != nil || wantErr != nil {
						t.Fatalf("node() = %v, store says %v", err, wantErr)
					}
					if diff := cmp.Diff(cached(want), got); diff != "" {
						t.Errorf("node() after the write, -store +cache:\n%s", diff)
					}
				}
			}
			if n := st.reads.Load(); n > 2 {
				t.Errorf("%d store reads for two lookups after one write, want at most 2", n)
			}
		})
	}
}

// A store read that a write overtakes (it read the device before the
// write, and returns after it) leaves no entry: the next read sees the
// write.
func TestDeviceCacheReadOvertakenByWrite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := newCacheStore(t)
	c := newDeviceCache(st, false)
	if err := st.Store.AddDevice(ctx, cacheNode()); err != nil {
		t.Fatal(err)
	}
	read, release := make(chan struct{}), make(chan struct{})
	st.hold = func() {
		close(read)
		<-release
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.node(ctx, cacheMAC)
		done <- err
	}()
	<-read
	st.hold = nil // the goroutine is past it
	owner := "bob"
	if err := c.ApplyChanges(ctx, []store.DeviceChange{{MAC: cacheMAC, Owner: &owner}}); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d, err := c.node(ctx, cacheMAC); err != nil || d.Owner != owner {
		t.Errorf("node() after an overtaken read = owner %q, %v; want %q", d.Owner, err, owner)
	}
}

// Off (a store other processes write too), every lookup reads the store.
func TestDeviceCacheOff(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := newCacheStore(t)
	c := newDeviceCache(st, true)
	if _, err := c.ReportDevice(ctx, cacheNode()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if d, err := c.node(ctx, cacheMAC); err != nil || d.IP != "127.30.0.1" || d.Booted || !d.LastSeen.IsZero() {
			t.Fatalf("node() = %+v, %v", d, err)
		}
	}
	if n := st.reads.Load(); n != 3 {
		t.Errorf("%d store reads for 3 lookups, want 3", n)
	}
}

// deviceWrites are the store methods that write what the cache keeps
// (devicecache.go implements each); the others write other tables, or
// devices' Booted and LastSeen only, or read.
var deviceWrites = map[string]bool{"AddDevice": true, "ReportDevice": true, "ForgetDevice": true, "ApplyChanges": true}

var notDeviceWrites = map[string]string{
	"Device": "read", "DeviceByName": "read", "Devices": "read", "Settings": "read", "Links": "read", "PoEOffs": "read",
	"Reboots": "read", "LatestReboots": "read", "BootStatuses": "read", "LogLines": "read", "Campaigns": "read",
	"CampaignNodes": "read", "CampaignBoots": "read", "Users": "read", "UserByName": "read", "UserByToken": "read",
	"AuditEntries": "read", "Close": "no data",
	"SetBooted": "booted only", "SetBootStatuses": "booted and last seen only",
	"SetLink": "links", "DeleteLink": "links", "AddPoEOff": "poe_off", "RemovePoEOff": "poe_off",
	"AddReboots": "reboots", "FinishReboots": "reboots", "DeleteReboots": "reboots", "InterruptReboots": "reboots",
	"SetRebootsBooted": "reboots", "AddLogLines": "log", "AddCampaign": "campaigns", "UpdateCampaign": "campaigns",
	"SaveCampaignProgress": "campaigns", "UnbootedCampaignBoots": "read",
	"Quarantines": "read", "SetQuarantines": "quarantine", "ClearQuarantine": "quarantine",
	"AddUser": "users", "RemoveUser": "users and tokens (a node keeps its owner's name)", "AddToken": "tokens",
	"RevokeTokens": "tokens", "AddAudit": "audit",
}

// Every store method is either a device write the cache sees or one
// that writes nothing it keeps: a new method fails here until sorted.
func TestDeviceCacheSeesEveryDeviceWrite(t *testing.T) {
	t.Parallel()
	iface := reflect.TypeFor[store.Store]()
	impl := reflect.TypeFor[*deviceCache]()
	for i := range iface.NumMethod() {
		name := iface.Method(i).Name
		if !deviceWrites[name] {
			if _, ok := notDeviceWrites[name]; !ok {
				t.Errorf("store method %s: add it to deviceWrites (and implement it in devicecache.go) if it writes a device's name, address, type, model, virtual flag, boot mode, owner or creation, else to notDeviceWrites", name)
			}
			continue
		}
		m, _ := impl.MethodByName(name)
		file, _ := runtime.FuncForPC(m.Func.Pointer()).FileLine(m.Func.Pointer())
		if filepath.Base(file) != "devicecache.go" {
			t.Errorf("deviceCache.%s is defined in %s, want devicecache.go", name, file)
		}
	}
}
