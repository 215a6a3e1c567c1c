package bmcreboot_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/power/ipmi/ipmisim"
	"github.com/walt-testbed/walt/internal/power/redfish/redfishsim"
)

// BenchmarkHardReboot: the hard reboot of n nodes at once, each with its
// own BMC (ipmi_sim over RMCP+, the Redfish simulator) or through a
// power.command (/bin/true), power.off_time 0: what the method itself
// costs, request to power back on. ms/batch is one reboot of the n nodes,
// ms/node the mean of the nodes' hard attempts. BMCs use 127.68.0.0/16.
//
//	go test -run '^$' -bench BenchmarkHardReboot -benchtime 3x ./internal/reboot/bmcreboot
func BenchmarkHardReboot(b *testing.B) {
	for _, method := range []string{"ipmi", "redfish", "command"} {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("%s/nodes=%d", method, n), func(b *testing.B) {
				r := newRig(b)
				for i := range n {
					ip := fmt.Sprintf("127.68.%d.%d", map[string]int{"ipmi": 0, "redfish": 1, "command": 2}[method], i+1)
					set := map[string]string{"power.method": method, "power.off_time": "0s"}
					switch method {
					case "ipmi":
						bmc := ipmisim.Start(b, ip)
						set["ipmi.host"], set["ipmi.port"], set["ipmi.user"], set["ipmi.password"] = bmc.Host, strconv.Itoa(bmc.Port), ipmisim.User, ipmisim.Password
					case "redfish":
						rf := redfishsim.Start(b, ip)
						set["redfish.url"], set["redfish.user"], set["redfish.password"] = rf.URL+redfishsim.SystemPath, redfishsim.User, redfishsim.Password
					case "command":
						set["power.command"] = "/bin/true {action} {name}"
					}
					r.add(b, fmt.Sprintf("n%d", i), set)
				}
				var perNode time.Duration
				b.ResetTimer()
				start := time.Now()
				for b.Loop() {
					for _, res := range r.eng.Reboot(b.Context(), r.nodes, true, nil) {
						if !res.OK {
							b.Fatalf("%s: %v", res.Node.Name, res.Err())
						}
						a := res.Attempts[len(res.Attempts)-1]
						perNode += a.Finished.Sub(a.Started)
					}
				}
				elapsed := time.Since(start)
				b.ReportMetric(elapsed.Seconds()*1000/float64(b.N), "ms/batch")
				b.ReportMetric(perNode.Seconds()*1000/float64(b.N*n), "ms/node")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
