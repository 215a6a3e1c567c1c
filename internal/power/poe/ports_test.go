package poe

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/power"
)

// ReadPorts reports each port's live PoE state, for every variant and SNMP
// version, and changes nothing on the switch.
func TestReadPorts(t *testing.T) {
	t.Parallel()
	for _, v := range []snmpswitch.Variant{snmpswitch.Standard, snmpswitch.Netgear, snmpswitch.TPLink} {
		for _, version := range []Version{V1, V2c} {
			t.Run(fmt.Sprintf("%s-v%s", v, version), func(t *testing.T) {
				t.Parallel()
				sim := startSim(t, "sw-a", snmpswitch.Config{Ports: 4, Variant: v})
				sim.SetEnabled(2, false) // off
				sim.SetDevice(3, false)  // enabled, powers nothing
				r := newRig(t, fastConfig())
				r.register(sim, SwitchConfig{Version: version})
				ports, err := r.driver.ReadPorts(t.Context(), "sw-a")
				if err != nil {
					t.Fatal(err)
				}
				got := map[int]string{}
				for _, p := range ports {
					got[p.Port] = fmt.Sprintf("%s poe=%t enabled=%t delivering=%t", p.Name, p.HasPoE, p.Enabled, p.Delivering)
				}
				want := map[int]string{
					1: "Gi1/0/1 poe=true enabled=true delivering=true",
					2: "Gi1/0/2 poe=true enabled=false delivering=false",
					3: "Gi1/0/3 poe=true enabled=true delivering=false",
					4: "Gi1/0/4 poe=true enabled=true delivering=true",
				}
				for p, line := range got {
					if p > 4 { // uplinks
						if !strings.HasSuffix(line, " poe=false enabled=false delivering=false") {
							t.Errorf("uplink port %d = %s, want no PoE", p, line)
						}
						delete(got, p)
					}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("ReadPorts (-want +got):\n%s", diff)
				}
				if st := sim.Stats(); st.Sets != 0 {
					t.Errorf("ReadPorts sent %d SETs, want 0", st.Sets)
				}
			})
		}
	}
}

func TestReadPortsErrors(t *testing.T) {
	t.Parallel()
	sim := startSim(t, "sw-a", snmpswitch.Config{Ports: 4})
	r := newRig(t, fastConfig())
	r.register(sim, SwitchConfig{})
	if _, err := r.driver.ReadPorts(t.Context(), "nowhere"); !errors.Is(err, power.ErrUnknownPosition) {
		t.Errorf("ReadPorts(unknown switch) = %v, want ErrUnknownPosition", err)
	}
	sim.SetUnreachable(true)
	_, err := r.driver.ReadPorts(t.Context(), "sw-a")
	if !errors.Is(err, power.ErrUnreachable) || !strings.Contains(err.Error(), "sw-a") || strings.Contains(err.Error(), "rw-s3cret") {
		t.Errorf("ReadPorts(unreachable) = %v, want ErrUnreachable naming sw-a without the community", err)
	}
}
