package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/netservice"
)

// testbed is a walt-server on a fresh SQLite database and a walt-lab
// registered with it, each a process of its own.
type testbed struct {
	o      *options
	dir    string // the server's data and the logs
	octet  int
	nodes  int
	dead   map[int]bool // indexes of the nodes whose agent is dead
	server *proc
	lab    *proc
	c      *client.Client
	url    string // the server's
	token  string // benchUser's, for the walt CLI

	// Set by start: from starting walt-lab to every live agent answering
	// PING, and to every node registered as booted with the server.
	agentsUp, registered time.Duration
}

// rq pings agents: a lab agent answers in microseconds, but thousands of
// them compete for two cores.
var rq = &netservice.Requester{ConnectTimeout: 2 * time.Second, ReplyTimeout: 2 * time.Second}

// startTestbed starts a server in dir and a lab of nodes on loopback block
// 127.<octet>, with the nodes of dead dead (alternately refused and hung),
// and waits until every node is registered as booted.
func startTestbed(ctx context.Context, o *options, dir string, octet, nodes int, dead map[int]bool) (_ *testbed, err error) {
	tb := &testbed{o: o, dir: dir, octet: octet, nodes: nodes, dead: dead}
	defer func() {
		if err != nil {
			tb.stop()
		}
	}()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	tb.url = url
	if tb.c, err = client.New(url, nil); err != nil {
		return nil, err
	}
	token, err := benchToken(ctx, filepath.Join(o.bin, "walt-server"), filepath.Join(dir, "data"))
	if err != nil {
		return nil, err
	}
	tb.c, tb.token = tb.c.WithToken(token), token
	serverArgs := []string{"--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:" + strconv.Itoa(port), "--fanout", strconv.Itoa(o.fanout), "--reply-timeout", o.reply.String()}
	if o.cpuProfiles != "" {
		if err := os.MkdirAll(o.cpuProfiles, 0o755); err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		serverArgs = append(serverArgs, "--cpuprofile", filepath.Join(o.cpuProfiles, fmt.Sprintf("walt-server-127.%d.prof", octet)))
	}
	tb.server, err = startProc(dir, filepath.Join(o.bin, "walt-server"), "walt-server", serverArgs...)
	if err != nil {
		return nil, err
	}
	if err := tb.await(ctx, 30*time.Second, "walt-server answering", func(ctx context.Context) (bool, error) {
		_, err := tb.c.Devices(ctx)
		return err == nil, nil
	}); err != nil {
		return nil, err
	}

	args := []string{"--server", url, "--nodes", strconv.Itoa(nodes), "--octet", strconv.Itoa(octet),
		"--boot-time", o.bootTime, "--poe-delay", o.poeDelay.String(), "--community", o.community,
		"--faults", faultSpec(nodes, dead)}
	if o.snmpPort != 161 {
		args = append(args, "--snmp-port", strconv.Itoa(o.snmpPort))
	}
	start := time.Now()
	tb.lab, err = startProcEnv(dir, filepath.Join(o.bin, "walt-lab"), "walt-lab", []string{"WALT_TOKEN=" + token}, args...)
	if err != nil {
		return nil, err
	}
	if err := tb.awaitAgents(ctx); err != nil {
		return nil, err
	}
	tb.agentsUp = time.Since(start)
	if err := tb.await(ctx, 3*time.Minute, fmt.Sprintf("%d nodes registered as booted", nodes), func(ctx context.Context) (bool, error) {
		n, err := tb.booted(ctx)
		return n == nodes, err
	}); err != nil {
		return nil, err
	}
	tb.registered = time.Since(start)
	return tb, nil
}

// faultSpec gives walt-lab's --faults for the dead nodes: refused and hung
// in turn.
func faultSpec(nodes int, dead map[int]bool) string {
	var idx []int
	for i := range dead {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	var items []string
	for k, i := range idx {
		f := lab.Refused
		if k%2 == 1 {
			f = lab.Hung
		}
		items = append(items, lab.NodeName(i, nodes)+"="+string(f))
	}
	return strings.Join(items, ",")
}

// stop stops the lab, then the server.
func (tb *testbed) stop() {
	for _, p := range []*proc{tb.lab, tb.server} {
		if p != nil {
			p.stop()
		}
	}
}

// alive returns why the testbed cannot go on, if one of its processes
// has exited.
func (tb *testbed) alive() error {
	for _, p := range []*proc{tb.server, tb.lab} {
		if p != nil {
			if err := p.exited(); err != nil {
				return err
			}
		}
	}
	return nil
}

// await polls cond every 100 ms until it holds, fails, a process of the
// testbed exits, or the timeout passes; what names the condition in errors.
func (tb *testbed) await(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if err := tb.alive(); err != nil {
			return err
		}
		ok, err := cond(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			return fmt.Errorf("waiting for %s: %w", what, err)
		case ok:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no %s after %s", what, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// booted counts the nodes the server holds as booted.
func (tb *testbed) booted(ctx context.Context) (int, error) {
	nl, err := tb.c.Nodes(ctx, map[string]string{"booted": "true"})
	return nl.NumNodes, err
}

// awaitAgents waits until the agent of every live node answers PING.
func (tb *testbed) awaitAgents(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	todo := make(chan int)
	var (
		mu      sync.Mutex
		missing []string
		wg      sync.WaitGroup
	)
	for range 128 {
		wg.Go(func() {
			for i := range todo {
				if !tb.ping(ctx, i) {
					mu.Lock()
					missing = append(missing, lab.NodeName(i, tb.nodes))
					mu.Unlock()
				}
			}
		})
	}
	for i := range tb.nodes {
		if !tb.dead[i] {
			todo <- i
		}
	}
	close(todo)
	wg.Wait()
	if err := tb.alive(); err != nil {
		return err
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("%d agents never answered PING, first %s (walt-lab log:\n%s)", len(missing), missing[0], tb.lab.tail(10))
	}
	return nil
}

// ping sends PING to node i until it answers OK; false if ctx ends first
// or the lab exits.
func (tb *testbed) ping(ctx context.Context, i int) bool {
	return tb.pingAddr(ctx, lab.NodeAddr(tb.octet, i))
}

// pingAddr sends PING to the agent at addr until it answers OK; false if
// ctx ends first or the process serving it (tb.lab) exits.
func (tb *testbed) pingAddr(ctx context.Context, addr string) bool {
	for {
		if line, err := rq.Do(ctx, addr, netservice.Request{Verb: netservice.VerbPing}); err == nil && line == "OK" {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tb.lab.done:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// settle waits until the testbed is quiet after a reboot: every live agent
// answers again and the boot reports have stopped coming (every node is
// booted, or the count has not moved for a second).
func (tb *testbed) settle(ctx context.Context) error {
	if err := tb.awaitAgents(ctx); err != nil {
		return err
	}
	last, still := -1, 0
	return tb.await(ctx, 2*time.Minute, "end of the boot reports", func(ctx context.Context) (bool, error) {
		n, err := tb.booted(ctx)
		if n == last {
			still++
		} else {
			last, still = n, 0
		}
		return n == tb.nodes || still >= 10, err
	})
}

// set names the first n nodes of the lab in the server's node-set syntax.
func (tb *testbed) set(n int) string {
	if n == tb.nodes {
		return "all-nodes"
	}
	return fmt.Sprintf("node[%s-%s]", strings.TrimPrefix(lab.NodeName(0, tb.nodes), "node"), strings.TrimPrefix(lab.NodeName(n-1, tb.nodes), "node"))
}

// reboot reboots set through the API and adds the run to s.
func (tb *testbed) reboot(ctx context.Context, set string, hard bool, s *rebootStats) error {
	start := time.Now()
	res, err := tb.c.Reboot(ctx, api.RebootRequest{Set: set, Hard: hard, Cause: "walt-bench"}, nil)
	wall := time.Since(start)
	if err != nil {
		if aerr := tb.alive(); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return fmt.Errorf("reboot %s: %w", set, err)
	}
	s.add(start, wall, res)
	return nil
}

// rebootCLI reboots set with the walt CLI at cli, as a user would type
// it (walt node reboot SET), and returns the time from starting the
// process to its exit. Exit status 1, some node not rebooted, is a run
// like another (the API's runs count the failures); any other failure is
// an error.
func (tb *testbed) rebootCLI(ctx context.Context, cli, set string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, cli, "--server", tb.url, "node", "reboot", set)
	cmd.Env = append(os.Environ(), "WALT_USER="+benchUser, "WALT_TOKEN="+tb.token)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr // stdout, a line per node, goes to /dev/null
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		return wall, fmt.Errorf("walt node reboot %s: %w\n%s", set, err, stderr.String())
	}
	if err != nil {
		// Exit 1 says some node failed; an error line says the command
		// itself did (refused, server unreachable).
		if bytes.Contains(stderr.Bytes(), []byte("Error:")) {
			return wall, fmt.Errorf("walt node reboot %s: %w\n%s", set, err, stderr.String())
		}
		if aerr := tb.alive(); aerr != nil { // exit 1 for a server gone, too
			return wall, fmt.Errorf("walt node reboot %s: %w\n%s", set, errors.Join(err, aerr), stderr.String())
		}
	}
	return wall, nil
}

// benchUser is the admin account the benchmark acts as.
const benchUser = "bench"

// benchToken creates the admin account benchUser in the server's data
// directory (walt-server user add) and returns its token.
func benchToken(ctx context.Context, server, dataDir string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, server, "--data", dataDir, "user", "add", benchUser, "--admin")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("walt-server user add %s: %w: %s", benchUser, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
