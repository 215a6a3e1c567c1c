package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/agent"
	"github.com/walt-testbed/walt/internal/experiment"
)

// kernelBootIDFile holds the kernel's id of the current boot; cmdlineFile
// the kernel's command line, where the kexec hook leaves its mark (tests
// change both).
var (
	kernelBootIDFile = "/proc/sys/kernel/random/boot_id"
	cmdlineFile      = agent.CmdlineFile
)

// bootID identifies this boot: the kernel's boot id on a real node or
// virtual machine (the agent really reboots it), else a fresh random id,
// as each start of a simulated agent is a boot of its own.
func bootID(realNode bool, kernelFile string) (string, error) {
	if realNode {
		b, err := os.ReadFile(kernelFile)
		if err != nil {
			return "", fmt.Errorf("read the boot id: %w", err)
		}
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
		return "", fmt.Errorf("read the boot id: %s is empty", kernelFile)
	}
	return client.NewBootID(), nil
}

// identity returns the IP address and the MAC address this node reports
// itself with: --ip and --mac, else those of the interface holding the
// address walt-node listens on (listenHost), or reaches the server from.
func (o *options) identity(listenHost string) (ip, mac string, err error) {
	ip, mac, err = client.LocalIdentity(o.server, listenHost)
	if o.ip != "" {
		ip = o.ip
	}
	if o.mac != "" {
		return ip, o.mac, nil
	}
	if mac == "" {
		if err == nil {
			err = errors.New("the interface has none")
		}
		return ip, "", fmt.Errorf("no MAC address found, give --mac: %w", err)
	}
	return ip, mac, nil
}

// bootReport is this boot's report. On a real node, the boot id is the
// kernel's and the node method says "kexec" when the kexec hook started
// this kernel (its walt.boot=kexec parameter, agent.KexecBootParam).
func (o *options) bootReport(ip, mac, bootMode string, virtual, realNode bool) (api.NodeReport, error) {
	name := o.name
	if name == "" {
		name, _ = os.Hostname()
	}
	model := o.model
	if model == "" {
		model = "unknown"
	}
	id, err := bootID(realNode, kernelBootIDFile)
	if err != nil {
		return api.NodeReport{}, err
	}
	rep := api.NodeReport{MAC: mac, IP: ip, Name: name, Model: model, BootMode: bootMode, Virtual: virtual, BootID: id}
	if realNode {
		rep.NodeMethod = agent.ReadNodeMethod(cmdlineFile)
	}
	return rep, nil
}

// report tells walt-server at o.server about this boot, retrying with
// backoff until it is accepted, then sends heartbeats until ctx ends. It
// never stops the agent: a node must serve reboots even when the server
// is away.
func report(ctx context.Context, o *options, listen net.Addr, bootMode string, virtual, realNode bool, log *slog.Logger) {
	host, _, _ := net.SplitHostPort(listen.String())
	ip, mac, err := o.identity(host)
	if err != nil {
		log.Error("cannot report to the server", "server", o.server, "err", err)
		return
	}
	rep, err := o.bootReport(ip, mac, bootMode, virtual, realNode)
	if err != nil {
		log.Error("cannot report to the server", "server", o.server, "err", err)
		return
	}
	p, err := client.NewReporter(o.server)
	if err != nil {
		log.Error("cannot report to the server", "err", err)
		return
	}
	if err := experiment.RemoveContext(o.contextDir); err != nil { // an earlier boot's (a simulated agent's restart)
		log.Warn("cannot remove an earlier boot's context", "err", err)
	}
	p.OnContext = func(_ string, bc api.BootContext) {
		if err := experiment.WriteContext(o.contextDir, bc); err != nil {
			log.Warn("cannot write the boot context for the experiment", "err", err)
			return
		}
		log.Debug("boot context written", "dir", o.contextDir, "cause", bc.Cause)
	}
	if err := p.Report(ctx, rep, nil); err != nil {
		if !errors.Is(err, context.Canceled) {
			log.Error("report to server failed", "server", o.server, "err", err)
		}
		return
	}
	log.Info("reported to server", "server", o.server, "name", rep.Name, "mac", mac, "ip", ip, "boot_id", rep.BootID, "node_method", rep.NodeMethod)
	p.Run(ctx)
}
