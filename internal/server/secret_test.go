package server_test

import (
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/testutil"
)

// TestRescanMalformedReplyHidesCommunity: a switch answering with a
// malformed packet that holds the community (gosnmp quotes such packets
// in hex) gets a rescan result, and a server log, without the community
// in any form.
func TestRescanMalformedReplyHidesCommunity(t *testing.T) {
	t.Parallel()
	// The community field claims more bytes than the message has.
	reply := append([]byte{0x30, 0x0e, 0x02, 0x01, 0x01, 0x04, 0x30}, "private\xa2\x00"...)
	pc, err := net.ListenPacket("udp", "127.61.254.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(reply, from)
		}
	}()
	logs := &testutil.Buffer{}
	e := newEnv(t, func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), nil))
		servertest.WithPoE(t)(c)
	})
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	if _, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: "sw-bad", IP: "127.61.254.1", MAC: "02:61:00:00:fe:01", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.SetConfig(t.Context(), api.ConfigRequest{Set: "sw-bad", Settings: []string{
		"snmp.version=2", "snmp.community=private", "snmp.port=" + port, "lldp.explore=true"}}); err != nil {
		t.Fatal(err)
	}
	res, err := e.c.Rescan(t.Context(), api.RescanRequest{Set: "sw-bad"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Switches) != 1 || res.Switches[0].OK {
		t.Fatalf("rescan = %+v, want sw-bad failed", res.Switches)
	}
	if !strings.Contains(res.Switches[0].Error, "malformed SNMP reply from sw-bad") {
		t.Errorf("rescan error = %q, want it to say the reply was malformed", res.Switches[0].Error)
	}
	for what, text := range map[string]string{"rescan error": res.Switches[0].Error, "server log": logs.String()} {
		for _, form := range []string{"private", hex.EncodeToString([]byte("private")), "70 72 69 76 61 74 65"} {
			if strings.Contains(text, form) {
				t.Errorf("%s shows the community as %q:\n%s", what, form, text)
			}
		}
	}
}
