//go:build !race

package bmcreboot_test

import (
	"net/url"
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
)

var bootIDLine = regexp.MustCompile(`walt-vnode: boot_id=([0-9a-f-]+) name=pc1`)

// TestEmulatedPCHardRebootThroughIPMI: an emulated PC, a QEMU VM booting
// the project's image with walt-node and registered as a physical node
// (virtual=false, model pc-x86-64), whose BMC is ipmi_sim attached to the
// VM's IPMI device. `walt node reboot --hard pc1` power-cycles it over
// RMCP+: the VM is stopped, the BMC reads the power off (cut verified), a
// new VM boots, and its agent reports a new boot id that completes the
// reboot's record.
func TestEmulatedPCHardRebootThroughIPMI(t *testing.T) {
	t.Parallel()
	image := emulatedPCImage(t)
	e := servertest.New(t, reboottest.NewAddrs(65), servertest.WithPoE(t))
	u, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	const mac = "52:54:00:65:00:01"
	delay, firmware := firmwareDelay(t)
	bmc := ipmisim.StartQEMU(t, "127.65.2.1", append(firmware,
		"-kernel", filepath.Join(image, "vmlinuz"), "-initrd", filepath.Join(image, "initramfs.cpio.gz"),
		"-append", "console=ttyS0 panic=-1 walt.server=http://10.0.2.2:"+u.Port()+
			" walt.node.name=pc1 walt.node.mac="+mac+" walt.node.model=pc-x86-64 walt.node.virtual=false",
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,mac="+mac)...)
	ctx := t.Context()
	bootID := func(pid int) string {
		m := bootIDLine.FindStringSubmatch(bmc.Console(pid))
		if m == nil {
			return ""
		}
		return m[1]
	}
	var first string
	testutil.Eventually(t, 120*time.Second, "pc1 to boot and report", func() bool {
		n, err := e.Client.Nodes(ctx, nil)
		if err != nil || len(n.Nodes) != 1 || !n.Nodes[0].Booted {
			return false
		}
		first = bootID(bmc.Starts()[0])
		return first != ""
	})
	nodes, _ := e.Client.Nodes(ctx, nil)
	if n := nodes.Nodes[0]; n.Name != "pc1" || n.Virtual || n.Model != "pc-x86-64" {
		t.Fatalf("registered node = %+v, want pc1, physical, model pc-x86-64", n)
	}
	if _, err := e.Client.SetConfig(ctx, api.ConfigRequest{Set: "pc1", Settings: []string{
		"power.method=ipmi", "ipmi.host=" + bmc.Host, "ipmi.port=" + strconv.Itoa(bmc.Port),
		"ipmi.user=" + ipmisim.User, "ipmi.password=" + ipmisim.Password, "power.off_time=1s"}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := e.Client.Reboot(ctx, api.RebootRequest{Set: "pc1", Hard: true, Requester: "alice"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !res[0].OK || res[0].Method != api.MethodIPMI {
		t.Fatalf("reboot --hard pc1 = %+v, want IPMI-reboot OK", res)
	}
	if a := res[0].Attempts[0]; a.CutVerified == nil || !*a.CutVerified {
		t.Errorf("attempt %+v, want the cut verified by the BMC", a)
	}
	// The power-on forked the VM's start command; it records itself soon.
	testutil.Eventually(t, 10*time.Second, "a new VM to start", func() bool { return len(bmc.Starts()) == 2 })
	starts := bmc.Starts()
	testutil.Eventually(t, 120*time.Second, "pc1 to report the new boot", func() bool {
		h, err := e.Client.Reboots(ctx, "pc1", 1)
		return err == nil && len(h.Reboots) == 1 && h.Reboots[0].Booted != nil
	})
	h, _ := e.Client.Reboots(ctx, "pc1", 1)
	second := bootID(starts[1])
	if r := h.Reboots[0]; r.BootID == first || r.BootID != second {
		t.Errorf("reboot record boot id %q, want the new VM's %q (first boot %q)", r.BootID, second, first)
	}
	t.Logf("IPMI power-cycle to booted: %s (ack after %s, firmware delay %s)", time.Duration(*h.Reboots[0].BootDuration).Round(time.Millisecond),
		res[0].Ack.Sub(start).Round(time.Millisecond), delay)
	if !strings.Contains(bmc.Firmware(starts[1]), "SeaBIOS") {
		t.Error("the new VM's firmware did not run: not a power-cycle")
	}
}
