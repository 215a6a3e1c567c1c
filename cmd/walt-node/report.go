package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
)

// report tells walt-server at o.server who this node is, retrying every
// few seconds until it is accepted or ctx ends. It never stops the agent:
// a node must serve reboots even when the server is away.
func report(ctx context.Context, o *options, listen net.Addr, bootMode string, virtual bool, log *slog.Logger) {
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
	rep := api.NodeReport{MAC: mac, IP: ip, Name: name, Model: model, BootMode: bootMode, Virtual: virtual}
	if err := client.Report(ctx, o.server, rep, 5*time.Second); err != nil {
		if !errors.Is(err, context.Canceled) {
			log.Error("report to server failed", "server", o.server, "err", err)
		}
		return
	}
	log.Info("reported to server", "server", o.server, "name", name, "mac", mac, "ip", ip)
}
