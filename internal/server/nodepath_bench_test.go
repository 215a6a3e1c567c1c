package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/testutil"
)

// The node-facing hot path's CPU: what a boot report and a heartbeat cost
// the process, server and a bare client together, over real TCP to a
// server run by Serve (its connection bound and deadlines included), on
// SQLite. The client writes prepared bytes and reads the answer; the
// "floor" cases run the same client against a handler that only reads
// the body and answers {}, so that a case's figure less the floor's is
// the server's own work. cpu-µs/op is getrusage's user and system time
// of the whole process per report (per beat for heartbeats).

// benchNodes is how many nodes the reports cycle through.
const benchNodes = 1000

// benchNodeIP is node i's address: the whole 127.0.0.0/8 is loopback.
func benchNodeIP(i int) string { return fmt.Sprintf("127.47.%d.%d", i>>8, i&0xff) }

func benchNodeMAC(i int) string { return fmt.Sprintf("52:54:03:00:%02x:%02x", i>>8, i&0xff) }

// nodeConn is one client connection from a chosen local address.
type nodeConn struct {
	c net.Conn
	r *bufio.Reader
}

// nodeDial opens a connection to addr from local (closed at b's end
// at the latest).
func nodeDial(b *testing.B, addr, local string) *nodeConn {
	c := dialFrom(b, local, addr)
	return &nodeConn{c: c, r: bufio.NewReader(c)}
}

// post sends one request and returns the answer's status and body.
func (nc *nodeConn) post(path string, body []byte, keepAlive bool) (int, []byte, error) {
	conn := "close"
	if keepAlive {
		conn = "keep-alive"
	}
	req := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: walt\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n", path, len(body), conn)
	if _, err := nc.c.Write(append(req, body...)); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(nc.r, nil)
	if err != nil {
		return 0, nil, err
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, got, err
}

// reportOnce sends node i's boot report, boot, over a new connection from
// local, as a node's agent does after a boot.
func reportOnce(b *testing.B, addr, local string, i int, boot string) {
	body, _ := json.Marshal(api.NodeReport{MAC: benchNodeMAC(i), IP: benchNodeIP(i), Name: fmt.Sprintf("bn%04d", i), Model: "rpi-b",
		BootMode: "network", BootID: boot})
	nc := nodeDial(b, addr, local)
	defer nc.c.Close()
	code, got, err := nc.post(api.Prefix+"/node-reports", body, false)
	if err != nil || code != http.StatusOK || !bytes.Contains(got, []byte(boot)) {
		b.Fatalf("report of node %d from %s: %d %s, %v", i, local, code, got, err)
	}
}

// serveBench runs a server for b on a real listener (the floor's if
// floor) and returns its address, its nodes reported once from their own
// addresses.
func serveBench(b *testing.B, floor bool) string {
	if floor {
		return serveOn(b, floorServer{})
	}
	cfg := servertest.Config(b)
	srv, err := server.New(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return serveOn(b, srv)
}

func serveOn(b *testing.B, h interface {
	Serve(context.Context, net.Listener, ...server.Task) error
}) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Serve(ctx, ln) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Serve = %v", err)
		}
	})
	addr := ln.Addr().String()
	for i := range benchNodes {
		reportOnce(b, addr, benchNodeIP(i), i, "boot-0")
	}
	return addr
}

// floorServer answers every request with {} after reading its body.
type floorServer struct{}

func (floorServer) Serve(ctx context.Context, ln net.Listener, _ ...server.Task) error {
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The boot ID back, so that reportOnce's check holds.
		var rep struct {
			BootID string `json:"boot_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&rep)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"boot_id\":%q}\n", rep.BootID)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	if err := hs.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func reportCPU(b *testing.B, cpu time.Duration, n int) {
	b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(n), "cpu-µs/op")
}

// BenchmarkNodeReport: a known node's boot report of a new boot, changing
// nothing else, over a new connection (an agent after a boot), from
// 127.0.0.1 (the lab's, vnodes' way) and from the node's own address (a
// real node's, checked against the inventory).
func BenchmarkNodeReport(b *testing.B) {
	for _, tc := range []struct {
		name  string
		floor bool
		own   bool
	}{{"floor", true, true}, {"from=127.0.0.1", false, false}, {"from=own", false, true}} {
		b.Run(tc.name, func(b *testing.B) {
			addr := serveBench(b, tc.floor)
			n := 0
			start := testutil.CPUTime(b)
			for b.Loop() {
				i := n % benchNodes
				local := "127.0.0.1"
				if tc.own {
					local = benchNodeIP(i)
				}
				n++
				reportOnce(b, addr, local, i, fmt.Sprintf("boot-%d", n))
			}
			reportCPU(b, testutil.CPUTime(b)-start, n)
		})
	}
}

// BenchmarkNodeHeartbeats: heartbeats over kept-alive connections (an
// agent beats every 10 s, well within the server's idle timeout): each of
// 100 nodes its own beat from its own address, and the lab's way, the
// beats of 1000 nodes in one request from 127.0.0.1. cpu-µs/op is per
// beat.
func BenchmarkNodeHeartbeats(b *testing.B) {
	for _, tc := range []struct {
		name  string
		floor bool
		beats int // per request; 1: from the node's own address
	}{{"floor/beats=1", true, 1}, {"beats=1/from=own", false, 1}, {"floor/beats=1000", true, 1000}, {"beats=1000/from=127.0.0.1", false, 1000}} {
		b.Run(tc.name, func(b *testing.B) {
			addr := serveBench(b, tc.floor)
			var conns []*nodeConn
			var bodies [][]byte
			if tc.beats == 1 {
				for i := range 100 {
					conns = append(conns, nodeDial(b, addr, benchNodeIP(i)))
					body, _ := json.Marshal(api.Heartbeats{Beats: []api.Heartbeat{{MAC: benchNodeMAC(i), BootID: "boot-0"}}})
					bodies = append(bodies, body)
				}
			} else {
				conns = append(conns, nodeDial(b, addr, "127.0.0.1"))
				hb := api.Heartbeats{}
				for i := range tc.beats {
					hb.Beats = append(hb.Beats, api.Heartbeat{MAC: benchNodeMAC(i), BootID: "boot-0"})
				}
				body, _ := json.Marshal(hb)
				bodies = append(bodies, body)
			}
			defer func() {
				for _, c := range conns {
					c.c.Close()
				}
			}()
			n := 0
			start := testutil.CPUTime(b)
			for b.Loop() {
				k := n % len(conns)
				n++
				code, got, err := conns[k].post(api.Prefix+"/heartbeats", bodies[k], true)
				if err != nil || code != http.StatusOK || bytes.Contains(got, []byte(`"report"`)) {
					b.Fatalf("heartbeat %d: %d %s, %v", n, code, got, err)
				}
			}
			reportCPU(b, testutil.CPUTime(b)-start, n*tc.beats)
		})
	}
}
