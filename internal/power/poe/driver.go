// Package poe power-cycles nodes through the PoE ports of their switches,
// over SNMP v1 or v2c (gosnmp), in-process.
//
// Per switch, the driver detects which PoE objects the switch implements
// (TP-Link, POWER-ETHERNET-MIB or Netgear, probed in WalT's order), works out
// which PoE port powers which LLDP port (WalT's heuristics, or an explicit
// port map), and changes all the ports of one operation in one SET request
// (split only at Config.MaxVarbinds or when the switch answers tooBig);
// concurrent calls for one switch arriving within Config.Gather share those
// requests. Switches are handled in parallel. Power-off intents go to a power.Journal
// before the SET is sent, so that power can be restored after a crash.
//
// What the driver learnt about a switch is cached in memory and forgotten
// when the switch's address, version or community changes, after any SNMP
// error with that switch, and on Forget (walt device rescan).
package poe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/walt-testbed/walt/internal/power"
)

// Version is an SNMP version.
type Version int

const (
	V1  Version = 1
	V2c Version = 2
)

func (v Version) String() string {
	switch v {
	case V1:
		return "1"
	case V2c:
		return "2c"
	}
	return fmt.Sprintf("unsupported(%d)", int(v))
}

// DefaultDelay is how long a port stays off in a power-cycle when the switch
// sets no poe.delay (WalT's POE_REBOOT_DELAY).
const DefaultDelay = 2 * time.Second

// SwitchConfig is what the driver needs to know about one switch.
type SwitchConfig struct {
	Name      string // used in messages
	Address   string // host, or host:port (default port 161)
	Version   Version
	Community Community // read-write
	// Delay is poe.delay: how long ports stay off in a power-cycle
	// (0: DefaultDelay).
	Delay time.Duration
	// Reboots is poe.reboots: whether the server may switch ports off.
	// Switching on is always allowed.
	Reboots bool
	// PortMap, if not nil, says which PoE port powers each LLDP port and
	// replaces the heuristics (for switches they get wrong).
	PortMap map[int]PoEIndex
}

// A Directory gives the settings of switches. The server implements it over
// its store.
type Directory interface {
	// Lookup returns the settings of the switch whose key is key
	// (power.Outlet.Switch). An unknown key is an error; the driver reports it
	// as power.ErrUnknownPosition.
	Lookup(ctx context.Context, key string) (SwitchConfig, error)
}

// Config tunes the driver. Start from DefaultConfig.
type Config struct {
	Timeout time.Duration // per SNMP request attempt (WalT: 3 s)
	Retries int           // attempts after the first (WalT: 2)
	// MaxVarbinds bounds the variables in one request. 60 (gosnmp's
	// default) keeps the largest SET we send (TP-Link OIDs) under 1472
	// bytes, one unfragmented UDP datagram on Ethernet, and covers a 48-port
	// switch in one SET. Switches that accept fewer answer tooBig; the
	// driver then halves the size and remembers it.
	MaxVarbinds int
	// Fanout bounds the switches handled at once.
	Fanout int
	// Gather is how long the driver waits, after the first call for a
	// switch, for more calls to send in the same requests. The reboot
	// engine calls once per node, concurrently: this turns 48 calls for
	// one switch into one SET off and one SET on.
	Gather time.Duration
}

// DefaultConfig returns WalT's SNMP timings and our batching defaults.
func DefaultConfig() Config {
	return Config{Timeout: 3 * time.Second, Retries: 2, MaxVarbinds: 60, Fanout: 64, Gather: 20 * time.Millisecond}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Timeout <= 0:
		return fmt.Errorf("poe timeout: must be > 0 (got %s)", c.Timeout)
	case c.Retries < 0:
		return fmt.Errorf("poe retries: must be >= 0 (got %d)", c.Retries)
	case c.MaxVarbinds < 1 || c.MaxVarbinds > 255:
		return fmt.Errorf("poe max varbinds: must be in 1..255 (got %d)", c.MaxVarbinds)
	case c.Fanout < 1:
		return fmt.Errorf("poe fanout: must be > 0 (got %d)", c.Fanout)
	case c.Gather < 0 || c.Gather > time.Second:
		return fmt.Errorf("poe gather: must be in 0..1s (got %s)", c.Gather)
	}
	return nil
}

// Driver switches PoE ports. It is safe for concurrent use.
type Driver struct {
	cfg     Config
	dir     Directory
	journal power.Journal
	log     *slog.Logger

	sem chan struct{} // bounds the batches running at once (Fanout)

	observe atomic.Pointer[RequestObserver] // ObserveRequests; nil: none

	mu        sync.Mutex
	switches  map[string]*switchState // by key; +checklocks:mu
	busy      map[power.Outlet]bool   // outlets with an operation in flight; +checklocks:mu
	gathering map[batchKey]*batch     // batches still taking requests; +checklocks:mu
}

var (
	_ power.Cycler   = (*Driver)(nil)
	_ power.Switcher = (*Driver)(nil)
)

// New returns a driver. journal receives power-off intents; log receives
// per-switch debug lines and warnings.
func New(cfg Config, dir Directory, journal power.Journal, log *slog.Logger) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dir == nil || journal == nil || log == nil {
		return nil, errors.New("poe driver: directory, journal and logger are required")
	}
	return &Driver{
		cfg: cfg, dir: dir, journal: journal, log: log,
		sem:       make(chan struct{}, cfg.Fanout),
		switches:  map[string]*switchState{},
		busy:      map[power.Outlet]bool{},
		gathering: map[batchKey]*batch{},
	}, nil
}

// ObserveRequests makes f hear of every SNMP request from now on
// (walt-server's metrics); nil stops it.
func (d *Driver) ObserveRequests(f RequestObserver) {
	if f == nil {
		d.observe.Store(nil)
		return
	}
	d.observe.Store(&f)
}

// open opens a session with sw, observed as ObserveRequests said.
func (d *Driver) open(sw *SwitchConfig, limit *int) (*session, error) {
	s, err := openSession(sw, &d.cfg, limit)
	if err == nil {
		if f := d.observe.Load(); f != nil {
			s.observe = *f
		}
	}
	return s, err
}

// switchState is what the driver learnt about one switch.
type switchState struct {
	mu sync.Mutex // held during exchanges: one conversation per switch at a time

	// All guarded by mu.
	address   string
	version   Version
	community Community
	limit     int
	variant   *variant
	mapping   map[int]PoEIndex // LLDP port -> PoE port
	explicit  bool             // mapping came from SwitchConfig.PortMap
}

// +checklocks:st.mu
func (st *switchState) reset() {
	st.variant, st.mapping, st.explicit = nil, nil, false
}

// adopt forgets what st knows if the switch's address, version, community
// or port map changed, and takes the explicit port map if there is one.
// +checklocks:st.mu
func (st *switchState) adopt(sw *SwitchConfig) {
	if st.address != sw.Address || st.version != sw.Version || !st.community.equal(sw.Community) ||
		(st.explicit != (sw.PortMap != nil)) {
		st.reset()
		st.address, st.version, st.community = sw.Address, sw.Version, sw.Community
	}
	if sw.PortMap != nil && !maps.Equal(st.mapping, sw.PortMap) {
		st.mapping, st.explicit = maps.Clone(sw.PortMap), true
	}
}

func (d *Driver) state(key string) *switchState {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, ok := d.switches[key]
	if !ok {
		st = &switchState{limit: d.cfg.MaxVarbinds}
		d.switches[key] = st
	}
	return st
}

// Forget drops what the driver learnt about a switch (PoE variant, port
// mapping, request size): the next operation discovers it again. The server
// calls it when a switch is rescanned or its settings change.
func (d *Driver) Forget(key string) {
	st := d.state(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.reset()
	st.limit = d.cfg.MaxVarbinds
}

// op is one outlet of one call.
type op struct {
	outlet power.Outlet
	off    bool // switch off (Switch) or power-cycle (Cycle)
	reason string
	poe    PoEIndex
	err    error
	what   string // "power-cycle", "power off", "power on"
	// minOff is the least time a power-cycle keeps the port off, if
	// longer than the switch's poe.delay.
	minOff time.Duration
	// switchName names the switch in messages once the directory gave it;
	// until then the outlet's key does.
	switchName string

	recorded bool     // in the journal
	done     bool     // the switch accepted the last SET for it
	req      *request // the call it belongs to
	// cut is the port's detection status read before power returned, in
	// a power-cycle; nil if it could not be read.
	cut *power.Cut
}

func (o *op) fail(err error) {
	if o.err == nil {
		o.err = fmt.Errorf("%s port %d of switch %s: %w", o.what, o.outlet.Port, cmp.Or(o.switchName, o.outlet.Switch), err)
	}
}

// Cycle implements power.Cycler: off, wait the switch's poe.delay, on.
func (d *Driver) Cycle(ctx context.Context, outlets []power.Outlet) []error {
	_, errs := d.CycleCuts(ctx, outlets)
	return errs
}

// CycleCuts is Cycle, and says for each outlet whether the switch
// reported the port no longer delivering power (its detection status)
// just before it was switched on again; a zero Cut when the status could
// not be read or the cycle failed before.
func (d *Driver) CycleCuts(ctx context.Context, outlets []power.Outlet) ([]power.Cut, []error) {
	return d.CycleCutsMin(ctx, outlets, 0)
}

// CycleCutsMin is CycleCuts with the outlets kept off at least minOff
// (the nodes' power.off_time), or the switch's poe.delay if longer. A
// batch of one switch waits for the longest off time among its outlets.
func (d *Driver) CycleCutsMin(ctx context.Context, outlets []power.Outlet, minOff time.Duration) ([]power.Cut, []error) {
	ops := make([]*op, len(outlets))
	for i, o := range outlets {
		ops[i] = &op{outlet: o, off: true, reason: power.ReasonHardReboot, what: "power-cycle", minOff: minOff}
	}
	errs := d.run(ctx, ops, true)
	cuts := make([]power.Cut, len(ops))
	for i, o := range ops {
		if o.cut != nil {
			cuts[i] = *o.cut
		}
	}
	return cuts, errs
}

// Switch implements power.Switcher.
func (d *Driver) Switch(ctx context.Context, changes []power.Change) []error {
	ops := make([]*op, len(changes))
	for i, c := range changes {
		ops[i] = &op{outlet: c.Outlet, off: c.State == power.Off, reason: c.Reason, what: "power on"}
		switch {
		case c.State == power.Off:
			ops[i].what = "power off"
			if c.Reason == "" {
				ops[i].fail(errors.New("no reason given for power-off"))
			}
		case c.State != power.On:
			ops[i].fail(fmt.Errorf("invalid target state %s", c.State))
		}
	}
	return d.run(ctx, ops, false)
}

func (d *Driver) run(ctx context.Context, ops []*op, cycle bool) []error {
	start := time.Now()
	claimed := d.claim(ops)
	defer d.release(claimed)

	bySwitch := map[string]*request{}
	for _, o := range ops {
		if o.err != nil {
			continue
		}
		r := bySwitch[o.outlet.Switch]
		if r == nil {
			r = &request{ctx: ctx, done: make(chan struct{})}
			bySwitch[o.outlet.Switch] = r
		}
		o.req = r
		r.ops = append(r.ops, o)
	}
	for _, key := range slices.Sorted(maps.Keys(bySwitch)) {
		d.submit(key, cycle, bySwitch[key])
	}
	for _, r := range bySwitch {
		<-r.done
	}

	errs := make([]error, len(ops))
	failed := 0
	for i, o := range ops {
		errs[i] = o.err
		if o.err != nil {
			failed++
		}
	}
	op := "switch"
	if cycle {
		op = "cycle"
	}
	d.log.Debug("poe: operation done", "op", op, "outlets", len(ops), "switches", len(bySwitch),
		"failed", failed, "elapsed", time.Since(start).Round(time.Millisecond))
	return errs
}

// claim marks the outlets busy; an outlet already busy (in this call or
// another) fails.
func (d *Driver) claim(ops []*op) []power.Outlet {
	d.mu.Lock()
	defer d.mu.Unlock()
	var claimed []power.Outlet
	for _, o := range ops {
		if o.err != nil {
			continue
		}
		if d.busy[o.outlet] {
			o.fail(errors.New("another power operation on this port is in progress"))
			continue
		}
		d.busy[o.outlet] = true
		claimed = append(claimed, o.outlet)
	}
	return claimed
}

func (d *Driver) release(outlets []power.Outlet) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range outlets {
		delete(d.busy, o)
	}
}

func failAll(ops []*op, err error) {
	for _, o := range ops {
		o.fail(err)
	}
}

func live(ops []*op) []*op {
	var r []*op
	for _, o := range ops {
		if o.err == nil {
			r = append(r, o)
		}
	}
	return r
}

// lookup returns the checked settings of a switch, named; errors wrap
// power.ErrUnknownPosition.
func (d *Driver) lookup(ctx context.Context, key string) (SwitchConfig, error) {
	sw, err := d.dir.Lookup(ctx, key)
	if err == nil {
		err = checkSwitch(&sw)
	}
	if err != nil {
		if !errors.Is(err, power.ErrUnknownPosition) {
			err = fmt.Errorf("%w: %w", err, power.ErrUnknownPosition)
		}
		return sw, err
	}
	sw.Name = cmp.Or(sw.Name, key)
	return sw, nil
}

func checkSwitch(sw *SwitchConfig) error {
	switch {
	case sw.Address == "":
		return errors.New("switch has no address")
	case sw.Version != V1 && sw.Version != V2c:
		return fmt.Errorf("switch snmp.version %s is not 1 or 2c", sw.Version)
	}
	return nil
}

// clear removes from the journal the outlets known to be on: those the
// switch switched on, and those it refused to switch off (a refused SET
// changes nothing). An outlet whose off request got no answer stays
// recorded: its state is unknown.
func (d *Driver) clear(ctx context.Context, log *slog.Logger, ops []*op) {
	var outlets []power.Outlet
	for _, o := range ops {
		on := o.done && !o.off
		refused := o.recorded && !o.done && o.off && !errors.Is(o.err, power.ErrUnreachable) && ctx.Err() == nil
		if on || refused {
			outlets = append(outlets, o.outlet)
			o.recorded = false
		}
	}
	if len(outlets) == 0 {
		return
	}
	if err := d.journal.ClearOff(context.WithoutCancel(ctx), outlets); err != nil {
		// The ports are on; a stale record only makes a later restore
		// switch on a port that is on.
		log.Warn("poe: clear power journal", "ports", len(outlets), "err", err)
	}
}

// prepare discovers the switch, checks the outlets, journals the offs and
// sends the first SET (offs off, ons on). It returns the outlets switched off.
func (d *Driver) prepare(ctx context.Context, st *switchState, sw *SwitchConfig, ops []*op) ([]*op, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(live(ops)) == 0 {
		return nil, nil
	}
	st.adopt(sw)
	sess, err := d.open(sw, &st.limit)
	if err != nil {
		return nil, err
	}
	defer sess.close()
	if err := d.learn(ctx, st, sess); err != nil {
		st.reset()
		return nil, err
	}
	for _, o := range live(ops) {
		p, ok := st.mapping[o.outlet.Port]
		if !ok {
			o.fail(fmt.Errorf("%s has no PoE port for port %d: %w", sw.Name, o.outlet.Port, power.ErrUnsupported))
			continue
		}
		o.poe = p
	}

	// Refuse ports that are enabled but power nothing: the node has
	// another power source (WalT checks the same before switching off).
	var offs []*op
	for _, o := range live(ops) {
		if o.off {
			offs = append(offs, o)
		}
	}
	if len(offs) > 0 {
		oids := make([]string, 0, 2*len(offs))
		for _, o := range offs {
			oids = append(oids, st.variant.adminOID(o.poe), st.variant.statusOID(o.poe))
		}
		res, err := sess.get(ctx, oids)
		if err != nil {
			st.reset()
			return nil, err
		}
		for i, o := range offs {
			admin, status := res[2*i], res[2*i+1]
			if err := cmp.Or(admin.err, status.err); err != nil {
				o.fail(err)
				continue
			}
			a, _ := asInt(admin.pdu)
			s, _ := asInt(status.pdu)
			if a == int64(st.variant.on) && s != int64(st.variant.delivering) {
				o.fail(fmt.Errorf("PoE port %s of %s is enabled but delivers no power: %w", o.poe, sw.Name, power.ErrNotPowered))
			}
		}
		offs = live(offs)
		if len(offs) > 0 {
			now := time.Now()
			recs := make([]power.OffRecord, len(offs))
			for i, o := range offs {
				recs[i] = power.OffRecord{Outlet: o.outlet, Reason: o.reason, Since: now}
			}
			if err := d.journal.RecordOff(ctx, recs); err != nil {
				failAll(offs, fmt.Errorf("record power-off in the journal (port left on): %w", err))
			} else {
				for _, o := range offs {
					o.recorded = true
				}
			}
		}
	}
	todo := live(ops)
	if len(todo) == 0 {
		return nil, nil
	}
	d.set(ctx, st, sess, todo)
	return live(offs), nil
}

// learn makes sure st knows the switch's variant and port mapping.
// +checklocks:st.mu
func (d *Driver) learn(ctx context.Context, st *switchState, sess *session) error {
	if st.variant != nil && st.mapping != nil {
		return nil
	}
	v, ports, err := detect(ctx, sess)
	if err != nil {
		return err
	}
	st.variant = v
	if st.mapping != nil { // explicit
		return nil
	}
	if v.identity {
		st.mapping = make(map[int]PoEIndex, len(ports))
		for _, p := range ports {
			st.mapping[p.Port] = p
		}
	} else {
		m, err := discoverMapping(ctx, sess, ports)
		if err != nil {
			return err
		}
		st.mapping = m
	}
	d.log.Debug("poe: switch discovered", "switch", sess.sw.Name, "variant", v.name, "poe_ports", len(ports))
	return nil
}

// setOn opens a session and switches ops on. The error is for a failure
// to talk to the switch at all.
// +checklocks:st.mu
func (d *Driver) setOn(ctx context.Context, st *switchState, sw *SwitchConfig, ops []*op) error {
	sess, err := d.open(sw, &st.limit)
	if err != nil {
		return err
	}
	defer sess.close()
	if st.variant == nil {
		// Forgotten while the ports were off: learn again.
		if err := d.learn(ctx, st, sess); err != nil {
			st.reset()
			return err
		}
	}
	d.readCuts(ctx, st, sw, sess, ops)
	for _, o := range ops {
		o.off, o.done = false, false
	}
	d.set(ctx, st, sess, ops)
	return nil
}

// readCuts reads the detection status of ports about to be switched back
// on: a port that no longer delivers power was cut. A port still
// delivering is logged: the switch accepted the off without cutting.
// +checklocks:st.mu
func (d *Driver) readCuts(ctx context.Context, st *switchState, sw *SwitchConfig, sess *session, ops []*op) {
	oids := make([]string, len(ops))
	for i, o := range ops {
		oids[i] = st.variant.statusOID(o.poe)
	}
	res, err := sess.get(ctx, oids)
	if err != nil {
		d.log.Warn("poe: cannot read the detection status of ports that are off", "switch", sw.Name, "err", err)
		return
	}
	for i, o := range ops {
		v, ok := asInt(res[i].pdu)
		if res[i].err != nil || !ok {
			continue
		}
		c := power.Cut{Verified: v != int64(st.variant.delivering)}
		if c.Verified {
			c.Detail = fmt.Sprintf("switch %s read PoE port %s not delivering power", sw.Name, o.poe)
		} else {
			c.Detail = fmt.Sprintf("switch %s still read PoE port %s delivering power while off", sw.Name, o.poe)
			d.log.Warn("poe: port off but still delivering power", "switch", sw.Name, "port", o.outlet.Port)
		}
		o.cut = &c
	}
}

// set sends one SET (split at the request limit) switching each op off or
// on, and marks the ops the switch accepted as done. A refusal of one
// variable fails its op only; a failure of a whole request fails the ops
// not yet done.
// +checklocks:st.mu
func (d *Driver) set(ctx context.Context, st *switchState, sess *session, ops []*op) {
	v := st.variant
	pdus := make([]gosnmp.SnmpPDU, len(ops))
	for i, o := range ops {
		val := v.on
		if o.off {
			val = v.off
		}
		pdus[i] = gosnmp.SnmpPDU{Name: v.adminOID(o.poe), Type: gosnmp.Integer, Value: val}
	}
	errs, done, err := sess.set(ctx, pdus)
	for i, o := range ops {
		o.done = done[i]
		if errs[i] != nil {
			o.fail(errs[i])
		} else if err != nil && !done[i] {
			o.fail(err)
		}
	}
	if err != nil || slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
		st.reset()
	}
}
