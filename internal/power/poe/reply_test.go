package poe

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/power"
)

// badSwitch is a UDP peer on loopback that answers every request with
// reply(request). It stops with the test.
func badSwitch(t testing.TB, reply func(req []byte) []byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			if out := reply(buf[:n]); len(out) > 0 {
				_, _ = pc.WriteTo(out, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// leakForms are the ways the community "private" could show in a text.
var leakForms = []string{"private", hex.EncodeToString([]byte("private")), fmt.Sprintf("% x", "private"),
	strings.ToUpper(hex.EncodeToString([]byte("private"))), "112 114 105 118 97 116 101"}

func leaked(text string) string {
	for _, f := range leakForms {
		if strings.Contains(text, f) {
			return f
		}
	}
	return ""
}

// message is a v2c message: a SEQUENCE of body, its length right.
func message(body ...byte) []byte { return append([]byte{0x30, byte(len(body))}, body...) }

// malformedReplies are answers a broken or hostile switch may give, each
// with the community in it.
var malformedReplies = map[string]func(req []byte) []byte{
	// The community claims more bytes than the message has.
	"community too long": func([]byte) []byte {
		return message(append([]byte{0x02, 0x01, 0x01, 0x04, 0x30}, "private\xa2\x00"...)...)
	},
	// The version claims more bytes than the message has.
	"version too long": func([]byte) []byte {
		return message(append([]byte{0x02, 0x40, 0x01, 0x04, 0x07}, "private\xa2\x00"...)...)
	},
	// The request sent back as a response with its PDU cut short.
	"truncated echo": func(req []byte) []byte {
		i := bytes.Index(req, []byte("private")) + len("private")
		if i < len("private") || i+2 > len(req) {
			return nil
		}
		out := bytes.Clone(req[:i+2])
		out[i] = 0xa2
		out[1] = byte(len(out) - 2)
		return out
	},
	// Bytes that are no BER at all, with the community in them.
	"garbage": func([]byte) []byte { return []byte("\xff\xffprivate\x00\x01garbage") },
}

// TestMalformedReplyHidesCommunity: gosnmp's decode errors carry a hex dump
// of the packet, community included; neither the driver's errors nor its
// log may show it, in clear or in hex.
func TestMalformedReplyHidesCommunity(t *testing.T) {
	t.Parallel()
	for name, reply := range malformedReplies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addr := badSwitch(t, reply)
			r := newRig(t, fastConfig())
			r.dir.put("sw-bad", SwitchConfig{Name: "sw-bad", Address: addr, Version: V2c, Community: NewCommunity("private"), Reboots: true})

			_, err := r.driver.Scan(t.Context(), "sw-bad")
			if err == nil {
				t.Fatal("Scan of a switch answering garbage succeeded")
			}
			errs := r.driver.Cycle(t.Context(), outlets("sw-bad", 3))
			for _, e := range []error{err, errs[0]} {
				if e == nil {
					t.Fatal("Cycle through a switch answering garbage succeeded")
				}
				if f := leaked(e.Error()); f != "" {
					t.Errorf("error shows the community as %q: %v", f, e)
				}
				if !errors.Is(e, power.ErrUnreachable) || !strings.Contains(e.Error(), "sw-bad ("+addr+")") {
					t.Errorf("error = %v, want one naming sw-bad (%s) and wrapping ErrUnreachable", e, addr)
				}
			}
			if f := leaked(r.logs.String()); f != "" {
				t.Errorf("log shows the community as %q:\n%s", f, r.logs.String())
			}
		})
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"bytes: 30 29 02 01 01 04 07 70 72 69 76 61 74 65 err: truncated (data 5 length 9)", "bytes: <bytes> err: truncated (data 5 length 9)"},
		{"not enough data for OctetString (9 vs 3): 042e70726976617465", "not enough data for OctetString (9 vs 3): <bytes>"},
		{"community private refused", "community <redacted> refused"},
		{"got [48 41 2 1 1]", "got <bytes>"},
		{"unknown field type: ff", "unknown field type: ff"},
		{strings.Repeat("x", 300), strings.Repeat("x", maxDetail) + "..."},
	} {
		if got := scrub(tc.in, "private"); got != tc.want {
			t.Errorf("scrub(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzSNMPReply sends arbitrary bytes as a switch's answer to a GET,
// through a real UDP socket and the driver's session: no panic, and no
// error ever shows the community.
func FuzzSNMPReply(f *testing.F) {
	req := message(append([]byte{0x02, 0x01, 0x01, 0x04, 0x07}, "private\xa0\x19\x02\x04\x00\x00\x00\x01\x02\x01\x00\x02\x01\x00\x30\x0b\x30\x09\x06\x05\x2b\x06\x01\x02\x01\x05\x00"...)...)
	for _, reply := range malformedReplies {
		f.Add(reply(req))
	}
	f.Add(req)
	f.Add([]byte{})

	var answer atomicBytes
	addr := badSwitch(f, func([]byte) []byte { return answer.load() })
	cfg := DefaultConfig()
	cfg.Timeout, cfg.Retries = 20*time.Millisecond, 0
	sw := &SwitchConfig{Name: "sw-fuzz", Address: addr, Version: V2c, Community: NewCommunity("private")}
	limit := 8
	f.Fuzz(func(t *testing.T, reply []byte) {
		answer.store(reply)
		s, err := openSession(sw, &cfg, &limit)
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		_, err = s.get(t.Context(), []string{".1.3.6.1.2.1.1.5.0", ".1.3.6.1.2.1.105.1.1.1.3.1.1"})
		if err == nil {
			return
		}
		if f := leaked(err.Error()); f != "" {
			t.Errorf("error shows the community as %q: %v", f, err)
		}
	})
}

// atomicBytes holds the fuzz switch's next answer.
type atomicBytes struct {
	mu sync.Mutex
	b  []byte
}

func (a *atomicBytes) store(b []byte) { a.mu.Lock(); a.b = bytes.Clone(b); a.mu.Unlock() }
func (a *atomicBytes) load() []byte   { a.mu.Lock(); defer a.mu.Unlock(); return a.b }
