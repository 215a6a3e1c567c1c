// Package ipmisim runs OpenIPMI's ipmi_sim, a real IPMI LAN (RMCP+) BMC
// simulator, on loopback for tests: its chassis power is a state file that
// a chassis-control script switches and that every power change is logged
// to, so that tests see what the BMC was asked and when.
package ipmisim

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/testutil"
)

// User and Password are the simulated BMC's administrator.
const (
	User     = "walt-admin"
	Password = "bmc-s3cret-Pw9"
)

// BMC is one running ipmi_sim.
type BMC struct {
	Host string
	Port int
	dir  string
}

// Event is one power change the BMC made.
type Event struct {
	On bool
	At time.Time
}

// lanConf is ipmi_sim's configuration: one LAN channel on addr, RMCP+ for
// one admin user, chassis power through the script.
const lanConf = `name "walt-test"
set_working_mc 0x20
  startlan 1
    addr %s %d
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid a123456789abcdefa123456789abcdef
  endlan
%s
  user 2 true "%s" "%s" admin 10 md5
`

// chassisLines give the chassis power to the script.
const chassisLines = `  chassis_control "%s"`

// vmLines attach a QEMU VM: ipmi_sim starts it at power-on (startcmd) and
// talks to its IPMI device (ipmi-bmc-extern) over TCP with the VM codec;
// power-off asks the VM to stop, then kills it.
const vmLines = `  serial 15 %s %d codec VM
  startcmd "%s"
  startnow true
  poweroff_wait 1
  kill_wait 2`

// vmScript is the VM's start command: QEMU with a KCS IPMI interface on an
// external BMC (this ipmi_sim), the firmware's debug console and the serial
// console in files per start, then the caller's arguments. Each start is
// appended to starts: its PID.
const vmScript = `#!/bin/sh
d=$(dirname "$0")
echo $$ >> "$d/starts"
exec %s -nodefaults -display none -m 256 -accel tcg \
	-chardev socket,id=ipmi0,host=%s,port=%d,reconnect=1 \
	-device ipmi-bmc-extern,chardev=ipmi0,id=bmc0 -device isa-ipmi-kcs,bmc=bmc0 \
	-debugcon file:"$d/firmware.$$.log" -global isa-debugcon.iobase=0x402 \
	-serial file:"$d/console.$$.log" %s
`

const emu = `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
`

// chassisScript is what ipmi_sim runs (with popen: ipmi_sim's shell, not
// walt's) for "get power" and "set power V". With the file "stuck" in its
// directory, power-off requests are accepted and ignored: a BMC that does
// not cut.
const chassisScript = `#!/bin/sh
d=$(dirname "$0")
case "$1" in
get) echo "power:$(cat "$d/power")";;
set)
	shift
	while [ $# -ge 2 ]; do
		if [ "$1" = power ]; then
			if [ "$2" = 0 ] && [ -e "$d/stuck" ]; then shift 2; continue; fi
			echo "$2" > "$d/power"
			echo "$2 $(date +%s%N)" >> "$d/events"
		fi
		shift 2
	done;;
esac
`

// Start runs ipmi_sim on ip (a 127/8 address) until the test ends, the
// machine powered on. Without ipmi_sim the test is skipped, or fails
// under CI=true.
func Start(t testing.TB, ip string) *BMC {
	t.Helper()
	return start(t, ip, false)
}

// StartQEMU runs ipmi_sim on ip with a QEMU VM as its machine, powered
// on: an IPMI power-off stops the VM, a power-on starts a new one (Starts,
// Firmware, Console). args are added to QEMU's (a kernel to boot, a
// network). Without QEMU the test is skipped, or fails under CI=true.
func StartQEMU(t testing.TB, ip string, args ...string) *BMC {
	t.Helper()
	return start(t, ip, true, args...)
}

// shellQuote quotes s as one word for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'`+"\\"+`''`) + "'" }

func start(t testing.TB, ip string, vm bool, args ...string) *BMC {
	t.Helper()
	bin, err := exec.LookPath("ipmi_sim")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ipmi_sim is not installed (Debian package openipmi; scripts/install-deps.sh installs it)")
		}
		t.Skip("ipmi_sim is not installed: apt-get install openipmi (or run scripts/install-deps.sh)")
	}
	dir := t.TempDir()
	b := &BMC{Host: ip, dir: dir}
	script := filepath.Join(dir, "chassis.sh")
	must(t, os.WriteFile(script, []byte(chassisScript), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "power"), []byte("1\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "sim.emu"), []byte(emu), 0o644))
	must(t, os.Mkdir(filepath.Join(dir, "state"), 0o755))
	// A free UDP port: bind :0, note it, release it for ipmi_sim.
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	b.Port = pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	machine := fmt.Sprintf(chassisLines, script)
	if vm {
		qemu, err := exec.LookPath("qemu-system-x86_64")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("qemu-system-x86_64 is not installed (Debian package qemu-system-x86; scripts/install-deps.sh installs it)")
			}
			t.Skip("qemu-system-x86_64 is not installed: apt-get install qemu-system-x86")
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		vmPort := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		vmSh := filepath.Join(dir, "vm.sh")
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = shellQuote(a)
		}
		must(t, os.WriteFile(vmSh, fmt.Appendf(nil, vmScript, qemu, ip, vmPort, strings.Join(quoted, " ")), 0o755))
		machine = fmt.Sprintf(vmLines, ip, vmPort, vmSh)
		// ipmi_sim killed, its VM would live on: kill every VM it started.
		t.Cleanup(func() {
			// A VM being started when ipmi_sim died records itself
			// soon after: look again until every VM is gone.
			testutil.Eventually(t, 5*time.Second, "the VMs of ipmi_sim to end", func() bool {
				alive := 0
				for _, pid := range b.Starts() {
					if syscall.Kill(pid, syscall.SIGKILL) == nil && !zombie(pid) {
						alive++
					}
				}
				return alive == 0
			})
		})
	}
	conf := filepath.Join(dir, "lan.conf")
	must(t, os.WriteFile(conf, fmt.Appendf(nil, lanConf, ip, b.Port, machine, User, Password), 0o600))
	cmd := exec.Command(bin, "-n", "-c", conf, "-f", filepath.Join(dir, "sim.emu"), "-s", filepath.Join(dir, "state"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.Create(filepath.Join(dir, "ipmi_sim.log"))
	must(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// ipmi_sim binds its port once it has read its configuration:
	// ready once the kernel lists the port bound. (Trying to bind it
	// would take it, for a moment, from under ipmi_sim.)
	testutil.EventuallyNil(t, 10*time.Second, "ipmi_sim to bind its port", func() error {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "ipmi_sim.log"))
			t.Fatalf("ipmi_sim exited at start:\n%s", log)
		default:
		}
		if udpBound(ip, b.Port) {
			return nil
		}
		return fmt.Errorf("port %d still free", b.Port)
	})
	return b
}

// udpBound says whether /proc/net/udp lists a socket bound to ip:port.
func udpBound(ip string, port int) bool {
	a := net.ParseIP(ip).To4()
	if a == nil {
		return false
	}
	// The kernel prints the address as a little-endian 32-bit number.
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], port)
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == local {
			return true
		}
	}
	return false
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// On reports the machine's power state.
func (b *BMC) On() bool {
	s, _ := os.ReadFile(filepath.Join(b.dir, "power"))
	return strings.TrimSpace(string(s)) == "1"
}

// Stuck makes the BMC accept power-off requests without cutting (true),
// or cut again (false).
func (b *BMC) Stuck(stuck bool) {
	p := filepath.Join(b.dir, "stuck")
	if stuck {
		_ = os.WriteFile(p, nil, 0o644)
	} else {
		_ = os.Remove(p)
	}
}

// Events returns the power changes made so far, in order.
func (b *BMC) Events() []Event {
	f, err := os.Open(filepath.Join(b.dir, "events"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ns, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil {
			continue
		}
		out = append(out, Event{On: v == "1", At: time.Unix(0, n)})
	}
	return out
}

// Starts returns the PID of each VM started so far (StartQEMU), in order.
func (b *BMC) Starts() []int {
	data, _ := os.ReadFile(filepath.Join(b.dir, "starts"))
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Firmware returns what the firmware of the VM with that PID printed on
// its debug console (SeaBIOS's banner once it ran).
func (b *BMC) Firmware(pid int) string {
	data, _ := os.ReadFile(filepath.Join(b.dir, "firmware."+strconv.Itoa(pid)+".log"))
	return string(data)
}

// zombie reports whether pid has exited but is not reaped yet.
func zombie(pid int) bool {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || strings.Contains(string(st), ") Z ")
}

// Console returns what the VM with that PID wrote on its serial console.
func (b *BMC) Console(pid int) string {
	data, _ := os.ReadFile(filepath.Join(b.dir, "console."+strconv.Itoa(pid)+".log"))
	return string(data)
}
