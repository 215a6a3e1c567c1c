// Package vnode supervises WalT's virtual nodes: one machine per vnode, a
// QEMU VM booting the default image (QEMUBackend) or a walt-node process on
// a loopback address (ProcessBackend), started again whenever it exits.
//
// The server uses it like this:
//
//	b, err := vnode.ChooseBackend(ctx, vnode.BackendConfig{DataDir: data, Logger: log}) // auto: QEMU, else processes
//	s, err := vnode.New(vnode.Config{DataDir: data, Backend: b, ServerURL: url, Logger: log})
//	go s.Run(ctx)                       // until ctx is done; then every machine is stopped and waited for
//	err = s.Create(vnode.Spec{Name: "vnode1", Settings: settings}) // starts after boot.delay
//	addr, ok := s.Addr("vnode1")        // "127.1.0.1:12346": soft reboot goes there (netservice)
//	err = s.HardReboot(ctx, "vnode1")   // kill the running VM; the next starts at once
//	err = s.Update("vnode1", settings)  // cpu.cores, ram, boot.delay: applied at the next start
//	st, err := s.Status("vnode1")       // running, pid, generation, last exit reason
//	err = s.Remove(ctx, "vnode1")       // stop, wait, forget
//	err = vnode.FollowConsole(ctx, s.ConsolePath("vnode1"), w, true) // walt node console
//
// Settings.Set parses "cpu.cores", "ram" and "boot.delay" values with WalT's
// syntax and messages.
//
// Lifecycle of a vnode: wait boot.delay (integer seconds, or "random": 1 to
// 10 s), start a machine with the settings current at that moment, wait for
// it to exit, log why (guest reboot, agent exit status 10, crash, kill),
// start again. A machine that fails quickly is restarted with a growing
// back-off (1 s to 30 s) instead of the boot delay alone. Each machine is a
// generation; HardReboot kills the running generation through its pidfd,
// never a later one, and when no machine runs it only cuts the wait short.
// Machines are started with Pdeathsig=SIGKILL, so none survives the server,
// even killed with SIGKILL; after a server restart Run starts them afresh
// (root is in RAM: there is no state to re-attach to).
//
// Every vnode's agent is reachable at its own address of Config.AddrPrefix
// (default 127.1.0.0/16), port 12346: QEMU forwards it to the guest
// (user-mode networking, no root needed), a process backend agent listens on
// it. The console (QEMU's serial port, or the agent's log) is appended to
// DataDir/vnodes/NAME/console.log, moved to console.log.1 beyond 8 MiB.
//
// QEMU runs under KVM only when a trial boot proves it works (a /dev/kvm on
// a CPU without virtualisation extensions aborts QEMU); otherwise TCG, with
// cpu.cores clamped to the host's CPU count, since more vCPUs than host CPUs
// only slow TCG down. See docs/vnodes.md.
package vnode
