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
)

// kernelBootIDFile holds the kernel's id of the current boot.
const kernelBootIDFile = "/proc/sys/kernel/random/boot_id"

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

// report tells walt-server at o.server about this boot, retrying with
// backoff until it is accepted, then sends heartbeats until ctx ends. It
// never stops the agent: a node must serve reboots even when the server
// is away.
func report(ctx context.Context, o *options, listen net.Addr, bootMode string, virtual, realNode bool, log *slog.Logger) {
	host, _, _ := net.SplitHostPort(listen.String())
	ip, mac, err := client.LocalIdentity(o.server, host)
	if o.mac != "" {
		mac = o.mac
	} else if mac == "" {
		log.Error("cannot report to the server: no MAC address found, give --mac", "server", o.server, "err", err)
		return
	}
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
		log.Error("cannot report to the server", "server", o.server, "err", err)
		return
	}
	p, err := client.NewReporter(o.server)
	if err != nil {
		log.Error("cannot report to the server", "err", err)
		return
	}
	rep := api.NodeReport{MAC: mac, IP: ip, Name: name, Model: model, BootMode: bootMode, Virtual: virtual, BootID: id}
	if err := p.Report(ctx, rep, nil); err != nil {
		if !errors.Is(err, context.Canceled) {
			log.Error("report to server failed", "server", o.server, "err", err)
		}
		return
	}
	log.Info("reported to server", "server", o.server, "name", name, "mac", mac, "ip", ip, "boot_id", id)
	p.Run(ctx)
}
