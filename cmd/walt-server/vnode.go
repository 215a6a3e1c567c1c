package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/vnode"
	"github.com/walt-testbed/walt/internal/wiring"
)

// vnodeOptions are walt-server's virtual node flags.
type vnodeOptions struct {
	backend, addrs   string
	accel, kvmDevice string
}

func (o *vnodeOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.backend, "vnode-backend", "auto", "virtual nodes run as `kind`: auto (QEMU VMs when qemu-system-x86_64 and the image DATA/images/default are there, else walt-node processes), qemu, process or none")
	fs.StringVar(&o.addrs, "vnode-addrs", vnode.DefaultAddrPrefix.String(), "loopback `prefix` whose addresses the agents of virtual nodes get (port 12346)")
	fs.StringVar(&o.accel, "vnode-accel", "auto", "`accelerator` of QEMU virtual nodes: auto (kvm when a trial boot in the background proves it works, tcg until then and otherwise), kvm or tcg")
	fs.StringVar(&o.kvmDevice, "kvm-device", "/dev/kvm", "KVM device `path` that --vnode-accel auto looks for")
}

// validate checks the flags before walt-server changes or opens anything;
// name names a flag's source in errors.
func (o *vnodeOptions) validate(name func(flag string) string) error {
	switch o.backend {
	case "auto", "qemu", "process", "none":
	default:
		return fmt.Errorf("%s %q: want auto, qemu, process or none", name("vnode-backend"), o.backend)
	}
	switch o.accel {
	case "auto", vnode.AccelKVM, vnode.AccelTCG:
	default:
		return fmt.Errorf("%s %q: want auto, kvm or tcg", name("vnode-accel"), o.accel)
	}
	if _, err := netip.ParsePrefix(o.addrs); err != nil {
		return fmt.Errorf("%s %q: want a prefix such as 127.1.0.0/16", name("vnode-addrs"), o.addrs)
	}
	return nil
}

// newSupervisor returns the supervisor of virtual nodes, or nil when they
// are disabled (--vnode-backend none, or auto with neither QEMU nor
// walt-node available).
func newSupervisor(o *vnodeOptions, dataDir, listen string, log *slog.Logger) (*vnode.Supervisor, error) {
	prefix, err := netip.ParsePrefix(o.addrs)
	if err != nil {
		return nil, fmt.Errorf("--vnode-addrs %q: want a prefix such as 127.1.0.0/16", o.addrs)
	}
	url, warning := agentServerURL(listen)
	sup, err := wiring.VNodes(wiring.VNodeConfig{Kind: o.backend, Accel: o.accel, KVMDevice: o.kvmDevice, DataDir: dataDir,
		AddrPrefix: prefix, ServerURL: url, Logger: log})
	if sup != nil && warning != "" {
		log.Warn(warning, "listen", listen)
	}
	return sup, err
}

// agentServerURL is the URL the agents of virtual nodes report their boots
// to, derived from --listen. QEMU guests reach the host's 127.0.0.1 as
// 10.0.2.2 (user-mode networking), and any other host address through
// QEMU's NAT, but not another loopback address: the guest routes 127/8 to
// itself.
func agentServerURL(listen string) (url, warning string) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Sprintf("cannot tell virtual nodes where the server is (bad --listen: %v): they will not report their boots", err)
	}
	ip, _ := netip.ParseAddr(host)
	switch {
	case host == "" || host == "localhost" || ip.IsUnspecified() || ip == netip.AddrFrom4([4]byte{127, 0, 0, 1}):
		host = "127.0.0.1"
	case ip.IsLoopback():
		warning = "QEMU virtual nodes cannot report their boots to a server listening on a loopback address other than 127.0.0.1: use --listen 127.0.0.1:PORT or :PORT"
	}
	if port == "0" {
		warning = "virtual nodes cannot report their boots to a server listening on a port chosen at random (--listen with port 0)"
	}
	return "http://" + net.JoinHostPort(host, port), warning
}

// vnodeTasks are the server tasks of virtual nodes: the supervisor, which
// runs until the server stops and then stops every machine, and, while the
// API serves, the settling of QEMU's accelerator and the hand-over of the
// stored virtual nodes to the supervisor (their machines start under TCG
// if the KVM trial boot has not answered yet).
func vnodeTasks(srv *server.Server, sup *vnode.Supervisor, log *slog.Logger) []server.Task {
	if sup == nil {
		return nil
	}
	tasks := []server.Task{{Run: func(ctx context.Context) {
		if err := sup.Run(ctx); err != nil {
			log.Error("vnode supervisor stopped", "err", err)
		}
		log.Info("virtual nodes stopped")
	}}}
	if q, ok := sup.Backend().(*vnode.QEMUBackend); ok && q.AccelStatus().Probing {
		tasks = append(tasks, server.Task{Starting: "kvm trial boot", Run: func(ctx context.Context) { q.ProbeAccel(ctx) }})
	}
	return append(tasks, server.Task{Starting: "start virtual nodes", Run: func(ctx context.Context) {
		if err := srv.StartVNodes(ctx); err != nil && ctx.Err() == nil {
			log.Error("cannot start the stored virtual nodes", "err", err)
		}
	}})
}
