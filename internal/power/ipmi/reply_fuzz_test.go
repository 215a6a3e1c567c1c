package ipmi_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/power/ipmi"
)

// FuzzBMCReply: a peer that answers every IPMI packet with the same bytes
// (an RMCP/ASF pong, a truncated RMCP+ open session response, garbage)
// gets an error, bounded and without the password, never a crash or a
// hang.
func FuzzBMCReply(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x06, 0x00, 0xff, 0x07})                                                 // RMCP header, IPMI class
	f.Add([]byte{0x06, 0x00, 0xff, 0x07, 0x06, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00}) // RMCP+ open session response, short
	f.Add([]byte{0x06, 0x00, 0xff, 0x07, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x81, 0x1c, 0x63, 0x20, 0x00, 0x38, 0x00, 0x01, 0x80, 0x04, 0x02, 0, 0, 0, 0, 0, 0})
	pc, err := net.ListenPacket("udp", "127.62.255.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer pc.Close()
	reply := make(chan []byte, 1)
	reply <- nil
	go func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			r := <-reply
			reply <- r
			_, _ = pc.WriteTo(r, from)
		}
	}()
	cfg := ipmi.DefaultConfig()
	cfg.Timeout, cfg.Retries, cfg.Poll, cfg.Settle = 20*time.Millisecond, 0, time.Millisecond, 10*time.Millisecond
	d, err := ipmi.New(cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	f.Fuzz(func(t *testing.T, data []byte) {
		<-reply
		reply <- data
		tg := ipmi.Target{Node: "pc1", Host: "127.62.255.1", Port: port, User: "admin", Password: power.NewSecret("fuzz-S3cret")}
		_, err := d.Cycle(t.Context(), tg)
		if err == nil {
			return // a reply that satisfies every step is a BMC's
		}
		if msg := err.Error(); len(msg) > 1000 || strings.Contains(msg, "fuzz-S3cret") {
			t.Fatalf("error too long or shows the password: %q", msg)
		}
	})
}
