package snmpswitch

import (
	"testing"

	"github.com/gosnmp/gosnmp"
)

// FuzzSwitchRequest feeds arbitrary datagrams to the simulated switch's
// request handling: no panic, an answer that encodes, and bounded work
// (an answer never holds more than maxBulkVarbinds variables beyond one
// per variable asked, whatever a GETBULK's max-repetitions says).
func FuzzSwitchRequest(f *testing.F) {
	admin := ".1.3.6.1.2.1.105.1.1.1.3.1.3"
	for _, p := range []gosnmp.SnmpPacket{
		{Version: gosnmp.Version2c, PDUType: gosnmp.GetRequest, Variables: []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.1.5.0", Type: gosnmp.Null}, {Name: admin, Type: gosnmp.Null}}},
		{Version: gosnmp.Version1, PDUType: gosnmp.GetNextRequest, Variables: []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.2.2.1.2", Type: gosnmp.Null}}},
		{Version: gosnmp.Version2c, PDUType: gosnmp.GetBulkRequest, MaxRepetitions: 1 << 30, NonRepeaters: 1,
			Variables: []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.1.3", Type: gosnmp.Null}, {Name: ".1.3", Type: gosnmp.Null}}},
		{Version: gosnmp.Version2c, PDUType: gosnmp.SetRequest, Variables: []gosnmp.SnmpPDU{{Name: admin, Type: gosnmp.Integer, Value: 2}}},
		{Version: gosnmp.Version1, PDUType: gosnmp.SetRequest, Variables: []gosnmp.SnmpPDU{{Name: admin, Type: gosnmp.OctetString, Value: []byte("on")}}},
	} {
		p.Community = "private"
		out, err := p.MarshalMsg()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(out)
	}
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x80})

	s, err := Start(Config{Ports: 8})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	f.Fuzz(func(t *testing.T, msg []byte) {
		resp, _, _ := s.respond(msg)
		if resp == nil {
			return
		}
		req, err := s.decoder.SnmpDecodePacket(msg)
		if err != nil {
			t.Fatalf("answered a request that does not decode: %v", err)
		}
		if n := len(resp.Variables); n > maxBulkVarbinds+len(req.Variables) {
			t.Errorf("answer holds %d variables for %d asked (%s)", n, len(req.Variables), req.PDUType)
		}
		if _, err := resp.MarshalMsg(); err != nil {
			t.Logf("answer does not encode (dropped, logged): %v", err)
		}
	})
}
