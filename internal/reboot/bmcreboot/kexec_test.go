//go:build !race

package bmcreboot_test

import (
	"bytes"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/power/ipmi/ipmisim"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/testutil"
	"github.com/walt-testbed/walt/internal/vnode"
	"github.com/walt-testbed/walt/internal/vnode/vmtest"
)

// The kexec test uses 127.69.0.0/16: the server's agents' block, the
// BMC on 127.69.255.2 and the guest agent's forwarded port on
// 127.69.255.1.

// pcInitrd writes, in dir, the initramfs of an emulated PC with the kexec
// hook: the image's, then an overlay (appended archives replace files)
// with this tree's /init and walt-node, /bin/walt-network-reboot linked to
// walt-node, and under /boot the image's kernel and, as initrd.img, the
// image's initramfs with the same overlay less /boot: what the hook
// loads.
func pcInitrd(t *testing.T, image, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "overlay")
	for _, d := range []string{"bin", "boot"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command(goBin, "build", "-o", filepath.Join(root, "bin", "walt-node"), "../../../cmd/walt-node")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build walt-node: %v\n%s", err, out)
	}
	copyFile(t, "../../../images/vnode/init", filepath.Join(root, "init"), 0o755)
	if err := os.Symlink("walt-node", filepath.Join(root, "bin", "walt-network-reboot")); err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(filepath.Join(image, "initramfs.cpio.gz"))
	if err != nil {
		t.Fatal(err)
	}
	archive := func() []byte {
		var b bytes.Buffer
		if err := vnode.WriteInitramfs(&b, root); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	loaded := append(append([]byte{}, base...), archive()...) // without /boot
	copyFile(t, filepath.Join(image, "vmlinuz"), filepath.Join(root, "boot", "vmlinuz"), 0o644)
	if err := os.WriteFile(filepath.Join(root, "boot", "initrd.img"), loaded, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pc-initrd.cpio.gz")
	if err := os.WriteFile(out, append(append([]byte{}, base...), archive()...), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// emulatedPCImage returns the vnode image's directory, or skips the test
// without one (fails under CI=true).
func emulatedPCImage(t *testing.T) string {
	t.Helper()
	image := vmtest.FindImage(t.TempDir())
	if image == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no vnode image (scripts/build-vnode-image.sh builds one)")
		}
		t.Skip("no vnode image: run scripts/build-vnode-image.sh, or set WALT_VNODE_IMAGE")
	}
	return image
}

// firmwareDelay returns QEMU's arguments for a firmware phase as long as
// WALT_PC_FIRMWARE_DELAY says (a Go duration; unset: none, as in CI):
// SeaBIOS holds its boot menu that long at each start, as a server's
// firmware takes its time. For the figures of docs/power.md.
func firmwareDelay(t *testing.T) (time.Duration, []string) {
	t.Helper()
	v := os.Getenv("WALT_PC_FIRMWARE_DELAY")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > time.Minute {
		t.Fatalf("WALT_PC_FIRMWARE_DELAY=%q: want a duration of 0 to 1m", v)
	}
	return d, []string{"-boot", "menu=on,splash-time=" + strconv.FormatInt(d.Milliseconds(), 10)}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

var reportLine = regexp.MustCompile(`msg="reported to server".* boot_id=([0-9a-f-]+) node_method=(\S*)`)

// TestEmulatedPCSoftRebootThroughKexec: the emulated PC (a QEMU VM
// registered physical, its BMC ipmi_sim) runs walt-node as a physical
// node's agent with the kexec hook, reached by the server through a port
// forward on loopback. `walt node reboot pc1` comes back through kexec: a
// new boot id reported with node_method kexec, in the same VM (no new VM
// started) and without its firmware running again. With kexec.allow=false
// it comes back through a plain reboot, at once (not after a 30 s
// timeout): the firmware runs again, the node method is empty.
func TestEmulatedPCSoftRebootThroughKexec(t *testing.T) {
	t.Parallel()
	image := emulatedPCImage(t)
	initrd := pcInitrd(t, image, t.TempDir())
	e := servertest.New(t, reboottest.NewAddrs(69), servertest.WithPoE(t))
	u, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	const mac, agentIP = "52:54:00:69:00:01", "127.69.255.1"
	delay, firmware := firmwareDelay(t)
	bmc := ipmisim.StartQEMU(t, "127.69.255.2", append(firmware, "-m", "768",
		"-kernel", filepath.Join(image, "vmlinuz"), "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 walt.server=http://10.0.2.2:"+u.Port()+
			" walt.node.name=pc1 walt.node.mac="+mac+" walt.node.model=pc-x86-64 walt.node.virtual=false walt.node.ip="+agentIP,
		"-netdev", "user,id=n0,hostfwd=tcp:"+agentIP+":12346-:12346", "-device", "virtio-net-pci,netdev=n0,mac="+mac)...)
	ctx := t.Context()
	vm := func() int {
		s := bmc.Starts()
		if len(s) == 0 {
			return 0
		}
		return s[0]
	}
	reports := func() [][]string {
		return reportLine.FindAllStringSubmatch(bmc.Console(vm()), -1)
	}
	firmwareRuns := func() int { return strings.Count(bmc.Firmware(vm()), "SeaBIOS (version") }
	testutil.Eventually(t, 120*time.Second, "pc1 to boot and report", func() bool {
		n, err := e.Client.Nodes(ctx, nil)
		return err == nil && len(n.Nodes) == 1 && n.Nodes[0].Booted && len(reports()) == 1
	})
	if n, _ := e.Client.Nodes(ctx, nil); n.Nodes[0].IP != agentIP || n.Nodes[0].Virtual {
		t.Fatalf("pc1 = %+v, want a physical node at %s", n.Nodes[0], agentIP)
	}
	// SeaBIOS prints its banner more than once in a cold boot.
	cold := firmwareRuns()
	if cold == 0 {
		t.Fatalf("no firmware banner at the first boot:\n%s", bmc.Firmware(vm()))
	}

	// reboot soft-reboots pc1 and waits for the record to be completed by
	// its next boot report.
	reboot := func(what string) (api.NodeResult, time.Duration) {
		t.Helper()
		before := len(reports())
		start := time.Now()
		res, err := e.Client.Reboot(ctx, api.RebootRequest{Set: "pc1", Requester: "alice"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || !res[0].OK || res[0].Method != api.MethodSoft {
			t.Fatalf("%s: reboot pc1 = %+v, want a soft-reboot OK", what, res)
		}
		testutil.Eventually(t, 120*time.Second, "pc1 to report its boot after "+what, func() bool {
			h, err := e.Client.Reboots(ctx, "pc1", 1)
			return err == nil && len(h.Reboots) == 1 && h.Reboots[0].ID == res[0].ID && h.Reboots[0].Booted != nil &&
				len(reports()) > before
		})
		return res[0], time.Since(start)
	}

	_, took := reboot("kexec")
	r := reports()
	if len(r) != 2 || r[1][2] != "kexec" || r[1][1] == r[0][1] {
		t.Errorf("reports after the kexec reboot %q, want a second one with a new boot id and node_method=kexec", r)
	}
	if n := len(bmc.Starts()); n != 1 {
		t.Errorf("%d VMs started, want the first only: kexec does not reset the machine", n)
	}
	if f := firmwareRuns(); f != cold {
		t.Errorf("firmware banners after the kexec reboot: %d, want the first boot's %d (firmware skipped)", f, cold)
	}
	t.Logf("kexec reboot: request to booted %s (firmware delay %s)", took.Round(time.Millisecond), delay)

	if _, err := e.Client.SetConfig(ctx, api.ConfigRequest{Set: "pc1", Settings: []string{"kexec.allow=false"}}); err != nil {
		t.Fatal(err)
	}
	_, took = reboot("kexec.allow=false")
	r = reports()
	if len(r) != 3 || r[2][2] != `""` || r[2][1] == r[1][1] {
		t.Errorf("reports after the plain reboot %q, want a third one with a new boot id and no node method", r)
	}
	if f := firmwareRuns(); f <= cold {
		t.Errorf("firmware banners after the plain reboot: %d, want more than the first boot's %d (the machine reset)", f, cold)
	}
	if took >= 30*time.Second+delay {
		t.Errorf("plain reboot took %s, want it at once, not after a 30 s timeout (firmware delay %s)", took, delay)
	}
	t.Logf("plain reboot (kexec.allow=false): request to booted %s (firmware delay %s)", took.Round(time.Millisecond), delay)
}
