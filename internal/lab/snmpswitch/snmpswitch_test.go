package snmpswitch

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

func start(t *testing.T, cfg Config) *Switch {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func client(t *testing.T, s *Switch, version gosnmp.SnmpVersion, community string) *gosnmp.GoSNMP {
	t.Helper()
	host, port, _ := net.SplitHostPort(s.Addr())
	p, _ := strconv.Atoi(port)
	g := &gosnmp.GoSNMP{Target: host, Port: uint16(p), Community: community, Version: version,
		Timeout: 300 * time.Millisecond, Retries: 0, MaxOids: 100}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Conn.Close() })
	return g
}

func TestGetSetStandard(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var events []PowerEvent
	s := start(t, Config{Name: "sw1", Ports: 8, OnPower: func(e PowerEvent) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}})
	g := client(t, s, gosnmp.Version2c, "private")

	r, err := g.Get([]string{".1.3.6.1.2.1.105.1.1.1.3.1.3", ".1.3.6.1.2.1.105.1.1.1.6.1.3", ".1.3.6.1.2.1.1.5.0"})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Variables[0].Value; got != 1 {
		t.Errorf("admin of 1.3 = %v, want 1", got)
	}
	if got := r.Variables[1].Value; got != 3 {
		t.Errorf("detection of 1.3 = %v, want 3 (deliveringPower)", got)
	}
	if got := string(r.Variables[2].Value.([]byte)); got != "sw1" {
		t.Errorf("sysName = %q, want sw1", got)
	}

	r, err = g.Set([]gosnmp.SnmpPDU{
		{Name: ".1.3.6.1.2.1.105.1.1.1.3.1.3", Type: gosnmp.Integer, Value: 2},
		{Name: ".1.3.6.1.2.1.105.1.1.1.3.1.5", Type: gosnmp.Integer, Value: 2},
	})
	if err != nil || r.Error != gosnmp.NoError {
		t.Fatalf("set = %v, %v", r, err)
	}
	for _, p := range []int{3, 5} {
		if on, _, _ := s.Port(p); on {
			t.Errorf("port %d still enabled after SET off", p)
		}
	}
	if on, _, _ := s.Port(4); !on {
		t.Errorf("port 4 disabled by a SET that did not name it")
	}
	mu.Lock()
	want := []PowerEvent{{"sw1", 3, false}, {"sw1", 5, false}}
	if len(events) != 2 || events[0] != want[0] || events[1] != want[1] {
		t.Errorf("events = %v, want %v", events, want)
	}
	mu.Unlock()
	if st := s.Stats(); st.Sets != 1 || st.SetVarbinds != 2 || st.Gets != 1 {
		t.Errorf("stats = %+v, want 1 SET of 2 varbinds, 1 GET", st)
	}
}

func TestSetErrorsAreAtomicAndExact(t *testing.T) {
	t.Parallel()
	s := start(t, Config{Ports: 4, ReadCommunity: "public"})
	admin := func(p int) string { return ".1.3.6.1.2.1.105.1.1.1.3.1." + strconv.Itoa(p) }
	cases := []struct {
		name    string
		version gosnmp.SnmpVersion
		comm    string
		vars    []gosnmp.SnmpPDU
		status  gosnmp.SNMPError
		index   uint8
	}{
		{"v2c bad value", gosnmp.Version2c, "private", []gosnmp.SnmpPDU{
			{Name: admin(1), Type: gosnmp.Integer, Value: 2}, {Name: admin(2), Type: gosnmp.Integer, Value: 7}}, gosnmp.WrongValue, 2},
		{"v1 bad value", gosnmp.Version1, "private", []gosnmp.SnmpPDU{
			{Name: admin(1), Type: gosnmp.Integer, Value: 2}, {Name: admin(2), Type: gosnmp.Integer, Value: 7}}, gosnmp.BadValue, 2},
		{"v2c missing instance", gosnmp.Version2c, "private", []gosnmp.SnmpPDU{
			{Name: admin(1), Type: gosnmp.Integer, Value: 2}, {Name: admin(9), Type: gosnmp.Integer, Value: 2}}, gosnmp.NoCreation, 2},
		{"v2c read-only object", gosnmp.Version2c, "private", []gosnmp.SnmpPDU{
			{Name: ".1.3.6.1.2.1.1.5.0", Type: gosnmp.OctetString, Value: "x"}}, gosnmp.NotWritable, 1},
		{"v1 missing", gosnmp.Version1, "private", []gosnmp.SnmpPDU{
			{Name: admin(1), Type: gosnmp.Integer, Value: 2}, {Name: admin(9), Type: gosnmp.Integer, Value: 2}}, gosnmp.NoSuchName, 2},
		{"v2c read community", gosnmp.Version2c, "public", []gosnmp.SnmpPDU{
			{Name: admin(1), Type: gosnmp.Integer, Value: 2}}, gosnmp.NoAccess, 1},
		{"v1 read community", gosnmp.Version1, "public", []gosnmp.SnmpPDU{
			{Name: admin(1), Type: gosnmp.Integer, Value: 2}}, gosnmp.NoSuchName, 1},
		{"v2c wrong type", gosnmp.Version2c, "private", []gosnmp.SnmpPDU{
			{Name: admin(1), Type: gosnmp.OctetString, Value: "2"}}, gosnmp.WrongType, 1},
	}
	for _, c := range cases {
		r, err := client(t, s, c.version, c.comm).Set(c.vars)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.Error != c.status || r.ErrorIndex != c.index {
			t.Errorf("%s: status %v index %d, want %v index %d", c.name, r.Error, r.ErrorIndex, c.status, c.index)
		}
		if on, _, _ := s.Port(1); !on {
			t.Fatalf("%s: failed SET switched port 1 off (SETs must be all-or-nothing)", c.name)
		}
	}
}

func TestWrongCommunityGetsNoAnswer(t *testing.T) {
	t.Parallel()
	s := start(t, Config{Ports: 4, Community: "s3cret"})
	_, err := client(t, s, gosnmp.Version2c, "guess").Get([]string{".1.3.6.1.2.1.1.5.0"})
	if err == nil {
		t.Fatal("GET with a wrong community was answered")
	}
	if st := s.Stats(); st.Dropped != 1 || st.Gets != 0 {
		t.Errorf("stats = %+v, want 1 dropped, 0 GETs", st)
	}
}

func TestWalksAllVariants(t *testing.T) {
	t.Parallel()
	roots := map[Variant]string{
		Standard: ".1.3.6.1.2.1.105.1.1.1.3",
		Netgear:  ".1.3.6.1.4.1.4526.11.16.1.1.1.3",
		TPLink:   ".1.3.6.1.4.1.11863.6.56.1.1.2.1.1.2",
	}
	for v, root := range roots {
		s := start(t, Config{Ports: 48, Variant: v})
		for _, version := range []gosnmp.SnmpVersion{gosnmp.Version1, gosnmp.Version2c} {
			g := client(t, s, version, "private")
			walk := g.BulkWalkAll
			if version == gosnmp.Version1 {
				walk = g.WalkAll
			}
			for _, r := range roots {
				pdus, err := walk(r)
				if err != nil {
					t.Fatalf("%s v%s walk %s: %v", v, version, r, err)
				}
				if n := map[bool]int{true: 48, false: 0}[r == root]; len(pdus) != n {
					t.Errorf("%s v%s: walk %s gave %d rows, want %d", v, version, r, len(pdus), n)
				}
			}
			ifs, err := walk(".1.3.6.1.2.1.2.2.1.5")
			if err != nil || len(ifs) != 53 {
				t.Errorf("%s v%s: ifSpeed walk = %d rows, %v; want 53", v, version, len(ifs), err)
			}
		}
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	s := start(t, Config{Ports: 4, MaxVarbinds: 2})
	g := client(t, s, gosnmp.Version2c, "private")
	r, err := g.Get([]string{".1.3.6.1.2.1.1.5.0", ".1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.3.0"})
	if err != nil || r.Error != gosnmp.TooBig {
		t.Errorf("GET of 3 with limit 2 = %v, %v; want tooBig", r, err)
	}
	s.SetUnreachable(true)
	if _, err := g.Get([]string{".1.3.6.1.2.1.1.5.0"}); err == nil {
		t.Error("unreachable switch answered")
	}
	s.SetUnreachable(false)
	s.FailSets(gosnmp.GenErr)
	r, err = g.Set([]gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.105.1.1.1.3.1.1", Type: gosnmp.Integer, Value: 2}})
	if err != nil || r.Error != gosnmp.GenErr {
		t.Errorf("SET with injected genErr = %v, %v", r, err)
	}
	if on, _, _ := s.Port(1); !on {
		t.Error("failed SET changed the port")
	}
	if err := s.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Error(err)
	}
}

func TestRequestCountersOverSNMP(t *testing.T) {
	t.Parallel()
	s := start(t, Config{Ports: 4})
	g := client(t, s, gosnmp.Version2c, "private")
	for _, v := range []int{2, 1, 2} {
		if r, err := g.Set([]gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.105.1.1.1.3.1.2", Type: gosnmp.Integer, Value: v}}); err != nil || r.Error != gosnmp.NoError {
			t.Fatalf("set = %v, %v", r, err)
		}
	}
	r, err := g.Get([]string{".1.3.6.1.2.1.11.15.0", ".1.3.6.1.2.1.11.16.0", ".1.3.6.1.2.1.11.17.0"})
	if err != nil {
		t.Fatal(err)
	}
	// The GET reading them is counted before they are read.
	for i, want := range []uint{1, 0, 3} {
		if got := gosnmp.ToBigInt(r.Variables[i].Value).Uint64(); r.Variables[i].Type != gosnmp.Counter32 || got != uint64(want) {
			t.Errorf("%s = %v %v, want Counter32 %d", r.Variables[i].Name, r.Variables[i].Type, got, want)
		}
	}
	s.ResetStats()
	r, err = g.Get([]string{".1.3.6.1.2.1.11.17.0"})
	if err != nil || gosnmp.ToBigInt(r.Variables[0].Value).Uint64() != 0 {
		t.Errorf("snmpInSetRequests after ResetStats = %v, %v, want 0", r, err)
	}
}
