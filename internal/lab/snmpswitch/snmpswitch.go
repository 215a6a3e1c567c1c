// Package snmpswitch simulates a PoE switch for tests, the lab and the demo: a
// real SNMP v1/v2c agent on a UDP address (loopback) serving the system group,
// IF-MIB, LLDP-MIB and one PoE variant (POWER-ETHERNET-MIB, its Netgear copy
// or the TP-Link MIB). SETs of the PoE admin objects switch port power, and a
// callback reports every change so the lab can stop or start the node behind
// the port.
//
// The agent is written on gosnmp's packet codec rather than on an agent
// library, so that it behaves like a real switch where the driver cares:
// error statuses are exact per SNMP version (noSuchName and badValue for v1;
// noSuchObject, noCreation, notWritable, wrongType, wrongValue for v2c), a
// SET is all-or-nothing, requests with an unknown community get no answer,
// an agent limit on variables per request answers tooBig, and every PDU is
// counted. One goroutine and one socket per switch: a process carries
// hundreds of 48-port switches.
package snmpswitch

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gosnmp/gosnmp"
)

// Variant selects the PoE MIB the switch implements.
type Variant int

const (
	// Standard is POWER-ETHERNET-MIB (RFC 3621): pethPsePortAdminEnable
	// 1 = enabled, 2 = disabled; pethPsePortDetectionStatus 3 = deliveringPower.
	Standard Variant = iota
	// Netgear serves the same objects under 1.3.6.1.4.1.4526.11.16.
	Netgear
	// TPLink serves tpPoePortStatus (1 = enable, 0 = disable) and
	// tpPoePowerStatus (2 = on), indexed by port number.
	TPLink
)

func (v Variant) String() string {
	switch v {
	case Standard:
		return "standard"
	case Netgear:
		return "netgear"
	case TPLink:
		return "tplink"
	}
	return fmt.Sprintf("variant(%d)", int(v))
}

// OIDs of the objects served, numeric (no MIB files needed).
const (
	oidSysDescr    = ".1.3.6.1.2.1.1.1"
	oidSysObjectID = ".1.3.6.1.2.1.1.2"
	oidSysUpTime   = ".1.3.6.1.2.1.1.3"
	oidSysName     = ".1.3.6.1.2.1.1.5"
	oidIfNumber    = ".1.3.6.1.2.1.2.1"
	oidSnmp        = ".1.3.6.1.2.1.11"        // .15 .16 .17 snmpInGetRequests, snmpInGetNexts, snmpInSetRequests
	oidIfEntry     = ".1.3.6.1.2.1.2.2.1"     // .1 ifIndex .2 ifDescr .3 ifType .5 ifSpeed
	oidIfXEntry    = ".1.3.6.1.2.1.31.1.1.1"  // .1 ifName
	oidPethEntry   = ".1.3.6.1.2.1.105.1.1.1" // .3 admin enable .6 detection status
	oidNetgearPeth = ".1.3.6.1.4.1.4526.11.16.1.1.1"
	oidTPLinkPoE   = ".1.3.6.1.4.1.11863.6.56.1.1.2.1.1" // .2 tpPoePortStatus .11 tpPoePowerStatus
	oidLldpLocal   = ".1.0.8802.1.1.2.1.3"               // .1 chassis id subtype .2 chassis id .3 sys name
	oidLldpLocPort = ".1.0.8802.1.1.2.1.3.7.1"           // .2 port id subtype .3 port id .4 port desc
	oidLldpRem     = ".1.0.8802.1.1.2.1.4.1.1"           // .4 .5 chassis id subtype/id .6 .7 port id subtype/id .9 sys name
)

// Interface is one IF-MIB ifTable row.
type Interface struct {
	Index int    // ifIndex
	Descr string // ifDescr
	Name  string // ifName
	Type  int    // ifType: 6 = ethernetCsmacd
	Speed uint32 // ifSpeed, bits per second (saturates at 4294967295)
}

// PoEPort is one PoE port: its index in the PoE table and the interface it
// powers. For TPLink, Group is ignored and the index is Port.
type PoEPort struct {
	Group, Port int
	IfIndex     int
}

// Neighbour is one LLDP neighbour seen on a local port.
type Neighbour struct {
	LocalPort int              // lldpRemLocalPortNum (= ifIndex on this switch)
	MAC       net.HardwareAddr // chassis id, subtype macAddress
	SysName   string
}

// PowerEvent reports that a port started or stopped delivering power.
type PowerEvent struct {
	Switch  string // Config.Name
	IfIndex int    // the interface the PoE port powers (the LLDP local port)
	On      bool
}

// Config describes one simulated switch. Zero values get defaults.
type Config struct {
	Name string // sysName; default "switch"
	// Addr is the UDP address to listen on; default "127.0.0.1:0".
	Addr string
	// Community is the read-write community; default "private".
	// ReadCommunity, if set, only reads (SETs answer noAccess / noSuchName).
	Community     string
	ReadCommunity string
	Variant       Variant
	// Ports is the number of 1 Gb/s PoE ports of the default layout (default
	// 48): ifIndex 1..Ports, then 4 uplinks at 10 Gb/s and a VLAN interface
	// (ifIndex 1000), PoE group 1 port N powering ifIndex N.
	Ports int
	// Interfaces and PoE replace the default layout when not nil.
	Interfaces []Interface
	PoE        []PoEPort
	Neighbours []Neighbour
	ChassisMAC net.HardwareAddr
	// MaxVarbinds, when > 0, is the agent's limit of variables per request:
	// larger requests are answered tooBig.
	MaxVarbinds int
	// OnPower, when not nil, is called for every change of a port's power, in
	// order, on the agent's goroutine, before the answer to the SET is sent.
	// It must not block for long: the agent serves no request meanwhile.
	OnPower func(PowerEvent)
	Logger  *slog.Logger
}

// Stats counts the PDUs the agent received with a valid community.
type Stats struct {
	Gets, GetNexts, GetBulks int
	Sets                     int // SET PDUs, whatever their outcome
	SetVarbinds              int
	Dropped                  int // requests not answered: bad community, undecodable, unreachable
}

type portState struct {
	PoEPort
	admin  bool // PoE enabled by the administrator (the SNMP object)
	device bool // a powered device draws power when the port is enabled
}

func (p *portState) delivering() bool { return p.admin && p.device }

// Switch is a running simulated switch. Its methods are safe for concurrent use.
type Switch struct {
	cfg     Config
	conn    net.PacketConn
	decoder *gosnmp.GoSNMP
	mib     mib
	start   time.Time
	done    chan struct{}

	mu          sync.Mutex
	ports       map[int]*portState // by ifIndex; +checklocks:mu
	stats       Stats              // +checklocks:mu
	unreachable bool               // +checklocks:mu
	latency     time.Duration      // +checklocks:mu
	failSets    gosnmp.SNMPError   // +checklocks:mu
	maxVarbinds int                // +checklocks:mu
	events      []PowerEvent       // pending, delivered after the answer; +checklocks:mu
}

// Start builds the switch from cfg and starts serving. Close stops it.
func Start(cfg Config) (*Switch, error) {
	if cfg.Name == "" {
		cfg.Name = "switch"
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Community == "" {
		cfg.Community = "private"
	}
	if cfg.Ports == 0 {
		cfg.Ports = 48
	}
	if cfg.Interfaces == nil {
		cfg.Interfaces = DefaultInterfaces(cfg.Ports)
	}
	if cfg.PoE == nil {
		for i := 1; i <= cfg.Ports; i++ {
			cfg.PoE = append(cfg.PoE, PoEPort{Group: 1, Port: i, IfIndex: i})
		}
	}
	if cfg.ChassisMAC == nil {
		cfg.ChassisMAC = net.HardwareAddr{0x02, 0x57, 0x41, 0x4c, 0x54, 0x01}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Switch{
		cfg:         cfg,
		decoder:     &gosnmp.GoSNMP{},
		start:       time.Now(),
		done:        make(chan struct{}),
		ports:       make(map[int]*portState),
		maxVarbinds: cfg.MaxVarbinds,
	}
	for _, p := range cfg.PoE {
		if _, dup := s.ports[p.IfIndex]; dup {
			return nil, fmt.Errorf("start simulated switch %s: interface %d powered by two PoE ports", cfg.Name, p.IfIndex)
		}
		s.ports[p.IfIndex] = &portState{PoEPort: p, admin: true, device: true}
	}
	s.buildMIB()
	conn, err := net.ListenPacket("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("start simulated switch %s: %w", cfg.Name, err)
	}
	s.conn = conn
	go s.serve()
	return s, nil
}

// DefaultInterfaces returns the default ifTable of an n-port switch.
func DefaultInterfaces(n int) []Interface {
	var ifs []Interface
	for i := 1; i <= n; i++ {
		ifs = append(ifs, Interface{Index: i, Descr: fmt.Sprintf("GigabitEthernet1/0/%d", i),
			Name: fmt.Sprintf("Gi1/0/%d", i), Type: 6, Speed: 1_000_000_000})
	}
	for i := 1; i <= 4; i++ {
		ifs = append(ifs, Interface{Index: n + i, Descr: fmt.Sprintf("TenGigabitEthernet1/0/%d", i),
			Name: fmt.Sprintf("Te1/0/%d", i), Type: 6, Speed: 4294967295})
	}
	return append(ifs, Interface{Index: 1000, Descr: "Vlan1", Name: "Vl1", Type: 136})
}

// Addr returns the address the agent listens on, host:port.
func (s *Switch) Addr() string { return s.conn.LocalAddr().String() }

// Name returns the switch's name.
func (s *Switch) Name() string { return s.cfg.Name }

// Close stops the agent and waits for its goroutine to end.
func (s *Switch) Close() error {
	err := s.conn.Close()
	<-s.done
	return err
}

// Stats returns the request counters.
func (s *Switch) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// ResetStats sets the request counters to zero.
func (s *Switch) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{}
}

// Port returns the state of the PoE port powering interface ifIndex: whether
// PoE is enabled and whether it delivers power. ok is false if no PoE port
// powers that interface.
func (s *Switch) Port(ifIndex int) (enabled, delivering, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.ports[ifIndex]
	if !ok {
		return false, false, false
	}
	return p.admin, p.delivering(), true
}

// SetEnabled sets a port's PoE admin state directly (as an operator would),
// without an SNMP request; it reports power changes like a SET.
func (s *Switch) SetEnabled(ifIndex int, on bool) {
	s.mu.Lock()
	if p, ok := s.ports[ifIndex]; ok {
		s.setAdmin(p, on)
	}
	ev := s.takeEvents()
	s.mu.Unlock()
	s.deliver(ev)
}

// SetDevice says whether the node on a port draws PoE power (true by
// default). A node with its own power supply is false: the port is enabled
// but delivers no power, and drivers must refuse to power-cycle it.
func (s *Switch) SetDevice(ifIndex int, poweredDevice bool) {
	s.mu.Lock()
	if p, ok := s.ports[ifIndex]; ok {
		was := p.delivering()
		p.device = poweredDevice
		s.noteChange(p, was)
	}
	ev := s.takeEvents()
	s.mu.Unlock()
	s.deliver(ev)
}

// SetUnreachable makes the agent drop every request (true) or answer again.
func (s *Switch) SetUnreachable(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unreachable = down
}

// SetLatency delays every answer by d (0: answer at once). Requests are still
// processed in order on arrival; only the answers are late.
func (s *Switch) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetMaxVarbinds changes the agent's limit of variables per request (0: none).
func (s *Switch) SetMaxVarbinds(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxVarbinds = n
}

// FailSets makes every following SET fail with this error status, changing
// nothing (gosnmp.NoError: SETs work again).
func (s *Switch) FailSets(status gosnmp.SNMPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failSets = status
}

// +checklocks:s.mu
func (s *Switch) setAdmin(p *portState, on bool) {
	was := p.delivering()
	p.admin = on
	s.noteChange(p, was)
}

// +checklocks:s.mu
func (s *Switch) noteChange(p *portState, was bool) {
	if now := p.delivering(); now != was {
		s.events = append(s.events, PowerEvent{Switch: s.cfg.Name, IfIndex: p.IfIndex, On: now})
	}
}

// +checklocks:s.mu
func (s *Switch) takeEvents() []PowerEvent {
	ev := s.events
	s.events = nil
	return ev
}

func (s *Switch) deliver(ev []PowerEvent) {
	if s.cfg.OnPower == nil {
		return
	}
	for _, e := range ev {
		s.cfg.OnPower(e)
	}
}

func (s *Switch) serve() {
	defer close(s.done)
	buf := make([]byte, 65535)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.cfg.Logger.Warn("simulated switch: read failed", "switch", s.cfg.Name, "err", err)
			continue
		}
		s.handle(buf[:n], from)
	}
}

func (s *Switch) handle(msg []byte, from net.Addr) {
	resp, latency, ev := s.respond(msg)
	if resp == nil {
		return
	}
	// Power changes are reported before the answer leaves: whoever
	// waits for the answer then sees them.
	s.deliver(ev)
	out, err := resp.MarshalMsg()
	if err != nil {
		s.cfg.Logger.Error("simulated switch: encode answer", "switch", s.cfg.Name, "err", err)
	} else if latency > 0 {
		time.AfterFunc(latency, func() { _, _ = s.conn.WriteTo(out, from) })
	} else if _, err := s.conn.WriteTo(out, from); err != nil && !errors.Is(err, net.ErrClosed) {
		s.cfg.Logger.Warn("simulated switch: send answer", "switch", s.cfg.Name, "err", err)
	}
}

// respond decodes one request and applies it. It returns the answer, how
// long to hold it and the power changes to report, or a nil answer for a
// request dropped unanswered.
func (s *Switch) respond(msg []byte) (*gosnmp.SnmpPacket, time.Duration, []PowerEvent) {
	req, err := s.decoder.SnmpDecodePacket(msg)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || s.unreachable || (req.Version != gosnmp.Version1 && req.Version != gosnmp.Version2c) {
		s.stats.Dropped++
		return nil, 0, nil
	}
	write := req.Community == s.cfg.Community
	if !write && (s.cfg.ReadCommunity == "" || req.Community != s.cfg.ReadCommunity) {
		// Like real v1/v2c agents: an unknown community gets no answer.
		s.stats.Dropped++
		return nil, 0, nil
	}
	resp := &gosnmp.SnmpPacket{
		Version:   req.Version,
		Community: req.Community,
		PDUType:   gosnmp.GetResponse,
		RequestID: req.RequestID,
	}
	v1 := req.Version == gosnmp.Version1
	switch {
	case s.maxVarbinds > 0 && len(req.Variables) > s.maxVarbinds:
		if req.PDUType == gosnmp.SetRequest {
			s.stats.Sets++
		}
		resp.Error = gosnmp.TooBig
		if v1 {
			resp.Variables = req.Variables
		}
	case req.PDUType == gosnmp.GetRequest:
		s.stats.Gets++
		s.get(req, resp, v1)
	case req.PDUType == gosnmp.GetNextRequest:
		s.stats.GetNexts++
		s.getNext(req, resp, v1)
	case req.PDUType == gosnmp.GetBulkRequest && !v1:
		s.stats.GetBulks++
		s.getBulk(req, resp)
	case req.PDUType == gosnmp.SetRequest:
		s.stats.Sets++
		s.stats.SetVarbinds += len(req.Variables)
		s.set(req, resp, v1, write)
	default:
		s.stats.Dropped++
		return nil, 0, nil
	}
	return resp, s.latency, s.takeEvents()
}

func fail(resp *gosnmp.SnmpPacket, req *gosnmp.SnmpPacket, status gosnmp.SNMPError, i int) {
	resp.Error = status
	resp.ErrorIndex = uint8(i + 1)
	resp.Variables = req.Variables
}

// +checklocks:s.mu
func (s *Switch) get(req, resp *gosnmp.SnmpPacket, v1 bool) {
	for i, vb := range req.Variables {
		o, err := parseOID(vb.Name)
		e, ok := s.mib.find(o)
		if err != nil || !ok {
			if v1 {
				fail(resp, req, gosnmp.NoSuchName, i)
				return
			}
			t := gosnmp.NoSuchObject
			if err == nil && s.mib.objectOf(o) {
				t = gosnmp.NoSuchInstance
			}
			resp.Variables = append(resp.Variables, gosnmp.SnmpPDU{Name: vb.Name, Type: t})
			continue
		}
		t, v := e.get()
		resp.Variables = append(resp.Variables, gosnmp.SnmpPDU{Name: e.oid.String(), Type: t, Value: v})
	}
}

// +checklocks:s.mu
func (s *Switch) getNext(req, resp *gosnmp.SnmpPacket, v1 bool) {
	for i, vb := range req.Variables {
		o, err := parseOID(vb.Name)
		var e *entry
		ok := false
		if err == nil {
			e, ok = s.mib.next(o)
		}
		if !ok {
			if v1 {
				fail(resp, req, gosnmp.NoSuchName, i)
				return
			}
			resp.Variables = append(resp.Variables, gosnmp.SnmpPDU{Name: vb.Name, Type: gosnmp.EndOfMibView})
			continue
		}
		t, v := e.get()
		resp.Variables = append(resp.Variables, gosnmp.SnmpPDU{Name: e.oid.String(), Type: t, Value: v})
	}
}

// maxBulkVarbinds bounds a GETBULK answer, as an agent's message size would.
const maxBulkVarbinds = 256

// +checklocks:s.mu
func (s *Switch) getBulk(req, resp *gosnmp.SnmpPacket) {
	nonRep := min(int(req.NonRepeaters), len(req.Variables))
	cursor := make([]oid, len(req.Variables))
	for i, vb := range req.Variables {
		cursor[i], _ = parseOID(vb.Name)
	}
	nextOf := func(i int) gosnmp.SnmpPDU {
		if cursor[i] != nil {
			if e, ok := s.mib.next(cursor[i]); ok {
				cursor[i] = e.oid
				t, v := e.get()
				return gosnmp.SnmpPDU{Name: e.oid.String(), Type: t, Value: v}
			}
		}
		name := req.Variables[i].Name
		if cursor[i] != nil {
			name = cursor[i].String()
		}
		return gosnmp.SnmpPDU{Name: name, Type: gosnmp.EndOfMibView}
	}
	for i := range nonRep {
		resp.Variables = append(resp.Variables, nextOf(i))
	}
	if nonRep == len(req.Variables) {
		return
	}
	for range int(req.MaxRepetitions) {
		if len(resp.Variables)+len(req.Variables)-nonRep > maxBulkVarbinds {
			return
		}
		allEnd := true
		for i := nonRep; i < len(req.Variables); i++ {
			vb := nextOf(i)
			if vb.Type != gosnmp.EndOfMibView {
				allEnd = false
			}
			resp.Variables = append(resp.Variables, vb)
		}
		if allEnd {
			return
		}
	}
}

// +checklocks:s.mu
func (s *Switch) set(req, resp *gosnmp.SnmpPacket, v1, write bool) {
	if !write {
		status := gosnmp.NoAccess
		if v1 {
			status = gosnmp.NoSuchName
		}
		fail(resp, req, status, 0)
		return
	}
	entries := make([]*entry, len(req.Variables))
	for i, vb := range req.Variables {
		o, err := parseOID(vb.Name)
		e, ok := s.mib.find(o)
		switch {
		case err != nil || !ok:
			status := gosnmp.NoCreation
			if err != nil || !s.mib.objectOf(o) {
				status = gosnmp.NotWritable
			}
			if v1 {
				status = gosnmp.NoSuchName
			}
			fail(resp, req, status, i)
			return
		case e.check == nil:
			status := gosnmp.NotWritable
			if v1 {
				status = gosnmp.NoSuchName
			}
			fail(resp, req, status, i)
			return
		}
		if status := e.check(vb.Type, vb.Value); status != gosnmp.NoError {
			if v1 {
				status = gosnmp.BadValue
			}
			fail(resp, req, status, i)
			return
		}
		entries[i] = e
	}
	if s.failSets != gosnmp.NoError {
		fail(resp, req, s.failSets, 0)
		return
	}
	for i, e := range entries {
		e.apply(req.Variables[i].Value)
	}
	resp.Variables = req.Variables
}
