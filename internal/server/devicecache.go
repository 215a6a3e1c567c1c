package server

import (
	"context"
	"sync"
	"time"

	"github.com/walt-testbed/walt/internal/store"
)

// deviceCache keeps what node traffic checks of each device this server
// has read or reported, by MAC, so that a known node's boot report and
// heartbeats read nothing from the store: a boot report of an unchanged
// node, a heartbeat from a node's own address (nodeauth.go).
//
// It is the store of the server's handlers (Server.store), which make
// every device write of this process, so all pass through it: AddDevice,
// ForgetDevice and ApplyChanges drop the device's entry once written,
// whatever their outcome; ReportDevice keeps the row it returns. Booted
// and LastSeen are not kept (the boot tracker owns both, and writes them
// on its own store, the same without the cache): an entry has them zero.
// The other services (history, campaigns, powersave) write no device. TestDeviceCacheSeesEveryDeviceWrite classifies every store
// method, so that a new one that writes devices is not missed.
//
// A write by another process is not seen: a server whose store others
// write too (Config.SharedStore, PostgreSQL shared by several servers)
// does not cache, and reads the store each time.
type deviceCache struct {
	store.Store
	off bool // Config.SharedStore: every read goes to the store

	mu sync.Mutex
	// gen counts the writes that dropped or replaced entries: a read of
	// the store that a write overtook does not fill the cache with what
	// it read before the write.
	gen     uint64                  // +checklocks:mu
	devices map[string]store.Device // +checklocks:mu
}

func newDeviceCache(st store.Store, off bool) *deviceCache {
	return &deviceCache{Store: st, off: off, devices: make(map[string]store.Device)}
}

// cached returns d as the cache keeps it: without the boot tracker's
// fields.
func cached(d store.Device) store.Device {
	d.Booted, d.LastSeen = false, time.Time{}
	return d
}

// node returns the device of a normalized MAC as the cache has it,
// reading the store on a miss: every field but Booted and LastSeen
// (zero), which only the boot tracker knows.
func (c *deviceCache) node(ctx context.Context, mac string) (store.Device, error) {
	if c.off {
		d, err := c.Store.Device(ctx, mac)
		return cached(d), err
	}
	c.mu.Lock()
	d, ok := c.devices[mac]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return d, nil
	}
	d, err := c.Store.Device(ctx, mac)
	if err != nil {
		return d, err
	}
	d = cached(d)
	c.mu.Lock()
	if c.gen == gen {
		c.devices[d.MAC] = d
	}
	c.mu.Unlock()
	return d, nil
}

// drop forgets the entry of mac, normalized or not, after a write.
func (c *deviceCache) drop(mac string) {
	if m, err := store.NormalizeMAC(mac); err == nil {
		mac = m
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.devices, mac)
}

func (c *deviceCache) AddDevice(ctx context.Context, d store.Device) error {
	defer c.drop(d.MAC)
	return c.Store.AddDevice(ctx, d)
}

func (c *deviceCache) ForgetDevice(ctx context.Context, mac string) error {
	defer c.drop(mac)
	return c.Store.ForgetDevice(ctx, mac)
}

func (c *deviceCache) ApplyChanges(ctx context.Context, changes []store.DeviceChange) error {
	defer func() {
		for _, ch := range changes {
			c.drop(ch.MAC)
		}
	}()
	return c.Store.ApplyChanges(ctx, changes)
}

// ReportDevice keeps the row the store returns, unless another write
// came meanwhile (two reports of one node at once, a rename): then the
// entry is dropped, and the next read fills it.
func (c *deviceCache) ReportDevice(ctx context.Context, d store.Device) (store.Device, error) {
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	got, err := c.Store.ReportDevice(ctx, d)
	if c.off {
		return got, err
	}
	if err != nil {
		c.drop(d.MAC)
		return got, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.devices[got.MAC] = cached(got)
	} else {
		delete(c.devices, got.MAC)
	}
	c.gen++
	return got, nil
}
