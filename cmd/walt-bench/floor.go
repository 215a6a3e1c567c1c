package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/netservice"
)

// benchBootFloor measures what a round of boots costs a server that keeps
// nothing: walt-bench itself answers the boot reports of a lab of
// --campaign-nodes nodes (a handler that decodes each and answers an
// empty node) and soft-reboots every node with netservice's Requester, as
// walt-server does, --campaign-rounds times. Its own CPU time per boot is
// the floor under the campaign figure's server_cpu_us_per_boot: the
// connections, the system calls and the HTTP of a boot, on this machine,
// without history, boot tracking or campaign rows.
func benchBootFloor(ctx context.Context, o *options, dir string, octet int, out func(*Figure), logw io.Writer) error {
	nodes, rounds := o.campaignNodes, o.campaignRounds
	fmt.Fprintf(logw, "walt-bench: boot floor, %d rounds on %d nodes answered by walt-bench itself (127.%d.0.0/16)\n", rounds, nodes, octet)
	reports := make(chan struct{}, 4*nodes)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The lab's registration (its switches, a rescan) is answered
		// with an empty object, and not counted.
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/node-reports" {
			io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
			io.WriteString(w, "{}\n")
			return
		}
		var rep api.NodeReport
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&rep); err != nil {
			http.Error(w, "not a node report", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "{}\n")
		select {
		case reports <- struct{}{}:
		default:
		}
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	args := []string{"--server", "http://" + ln.Addr().String(), "--nodes", strconv.Itoa(nodes),
		"--octet", strconv.Itoa(octet), "--boot-time", o.campaignBoot}
	if o.snmpPort != 161 {
		args = append(args, "--snmp-port", strconv.Itoa(o.snmpPort))
	}
	tb := &testbed{o: o, dir: dir, octet: octet, nodes: nodes}
	if tb.lab, err = startProc(dir, filepath.Join(o.bin, "walt-lab"), "walt-lab", args...); err != nil {
		return err
	}
	defer tb.stop()
	if err := tb.awaitAgents(ctx); err != nil {
		return err
	}
	if err := awaitReports(ctx, reports, nodes, tb); err != nil { // the first boots
		return err
	}
	var cpu time.Duration
	rq := &netservice.Requester{}
	for range rounds {
		before := selfCPU()
		errs := make([]error, nodes)
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Go(func() {
				if _, err := rq.Do(ctx, lab.NodeAddr(octet, i), netservice.Request{Verb: netservice.VerbReboot}); err != nil {
					errs[i] = fmt.Errorf("boot floor: REBOOT of %s: %w", lab.NodeName(i, nodes), err)
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err // the first: a thousand would say no more
			}
		}
		if err := awaitReports(ctx, reports, nodes, tb); err != nil {
			return err
		}
		cpu += selfCPU() - before
		if err := tb.awaitAgents(ctx); err != nil {
			return err
		}
	}
	out(figure("boot-floor").Int("nodes", nodes).Int("rounds", rounds).Str("boot_time", o.campaignBoot).
		Float("cpu_us_per_boot", float64(cpu)/float64(time.Microsecond)/float64(nodes*rounds), 0))
	return nil
}

// awaitReports waits for n boot reports.
func awaitReports(ctx context.Context, reports <-chan struct{}, n int, tb *testbed) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for got := 0; got < n; got++ {
		select {
		case <-reports:
		case <-ctx.Done():
			if err := tb.alive(); err != nil {
				return err
			}
			return fmt.Errorf("boot floor: %d boot reports of %d", got, n)
		}
	}
	return nil
}

// selfCPU is the CPU time walt-bench has used, user and system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
