// Package redfishsim is a small Redfish BMC for tests, on loopback: a
// service root, a Systems collection with one ComputerSystem whose
// PowerState its #ComputerSystem.Reset action changes, HTTP basic
// authentication on everything but the service root (as DMTF's Redfish
// specification allows), and Redfish error bodies (@Message.ExtendedInfo)
// for refused requests.
//
// It exists because no Redfish simulator can be installed here: DMTF's
// Redfish-Interface-Emulator and sushy-tools are Python services outside
// Debian's archive, and Debian packages none. It serves what a BMC's
// Redfish service serves for power control, as DMTF's schemas define it
// (ServiceRoot 1.x, ComputerSystemCollection, ComputerSystem 1.x); the
// driver has not been tested against a vendor's BMC (docs/power.md).
package redfishsim

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// User and Password are the simulated BMC's account.
const (
	User     = "walt-root"
	Password = "rf-S3cret-pw7"
)

// SystemPath is the path of the one system.
const SystemPath = "/redfish/v1/Systems/437XR1138R2"

// BMC is one running simulated BMC.
type BMC struct {
	// URL is the service's URL: http://ip:port.
	URL string

	mu     sync.Mutex
	on     bool          // +checklocks:mu
	stuck  bool          // +checklocks:mu
	delay  time.Duration // +checklocks:mu
	since  time.Time     // +checklocks:mu; when the last reset was asked
	target bool          // +checklocks:mu; the state asked for
	events []Event       // +checklocks:mu
	denied int           // +checklocks:mu
}

// Event is one reset the BMC accepted.
type Event struct {
	ResetType string
	At        time.Time
}

// Start serves a BMC on ip (a 127/8 address), its system on, until the
// test ends.
func Start(t testing.TB, ip string) *BMC {
	t.Helper()
	return start(t, ip, false)
}

// StartTLS is Start with HTTPS, on a self-signed certificate.
func StartTLS(t testing.TB, ip string) *BMC {
	t.Helper()
	return start(t, ip, true)
}

func start(t testing.TB, ip string, tls bool) *BMC {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	b := &BMC{on: true, target: true}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	srv.Listener.Close()
	srv.Listener = ln
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	return b
}

// Stuck makes the BMC accept ForceOff without cutting (true).
func (b *BMC) Stuck(stuck bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stuck = stuck
}

// Delay makes the system take d to reach the state a reset asks, showing
// PoweringOff or PoweringOn meanwhile.
func (b *BMC) Delay(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.delay = d
}

// On reports the system's power state.
func (b *BMC) On() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state() == "On"
}

// Events returns the resets accepted so far.
func (b *BMC) Events() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Event(nil), b.events...)
}

// Denied returns how many requests were refused for their credentials.
func (b *BMC) Denied() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.denied
}

// state is the PowerState shown now.
// +checklocks:b.mu
func (b *BMC) state() string {
	if b.on != b.target {
		if time.Since(b.since) < b.delay {
			if b.target {
				return "PoweringOn"
			}
			return "PoweringOff"
		}
		b.on = b.target
	}
	if b.on {
		return "On"
	}
	return "Off"
}

var resetTypes = []string{"On", "ForceOff", "GracefulShutdown", "ForceRestart", "PowerCycle"}

func (b *BMC) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("OData-Version", "4.0")
	if r.URL.Path == "/redfish/v1" || r.URL.Path == "/redfish/v1/" {
		if r.Method != http.MethodGet {
			fail(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", "method not allowed")
			return
		}
		reply(w, map[string]any{
			"@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot", "@odata.id": "/redfish/v1/", "Id": "RootService",
			"Name": "Root Service", "RedfishVersion": "1.6.0",
			"Systems": map[string]string{"@odata.id": "/redfish/v1/Systems"},
		})
		return
	}
	if u, p, ok := r.BasicAuth(); !ok || u != User || p != Password {
		b.mu.Lock()
		b.denied++
		b.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="simulated BMC"`)
		fail(w, http.StatusUnauthorized, "Base.1.8.InsufficientPrivilege", "authentication required")
		return
	}
	switch {
	case r.URL.Path == "/redfish/v1/Systems" && r.Method == http.MethodGet:
		reply(w, map[string]any{
			"@odata.type": "#ComputerSystemCollection.ComputerSystemCollection", "@odata.id": "/redfish/v1/Systems",
			"Name": "Computer System Collection", "Members@odata.count": 1,
			"Members": []map[string]string{{"@odata.id": SystemPath}},
		})
	case r.URL.Path == SystemPath && r.Method == http.MethodGet:
		b.mu.Lock()
		st := b.state()
		b.mu.Unlock()
		reply(w, map[string]any{
			"@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem", "@odata.id": SystemPath, "Id": "437XR1138R2",
			"Name": "WebFrontEnd483", "SystemType": "Physical", "PowerState": st,
			"Actions": map[string]any{"#ComputerSystem.Reset": map[string]any{
				"target":                            SystemPath + "/Actions/ComputerSystem.Reset",
				"ResetType@Redfish.AllowableValues": resetTypes,
			}},
		})
	case r.URL.Path == SystemPath+"/Actions/ComputerSystem.Reset" && r.Method == http.MethodPost:
		var body struct{ ResetType string }
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
			fail(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", "malformed JSON body")
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		b.state() // settle a reset in progress
		switch body.ResetType {
		case "On":
			b.target = true
		case "ForceOff", "GracefulShutdown":
			if !b.stuck {
				b.target = false
			}
		case "ForceRestart", "PowerCycle":
			b.target, b.on = true, false
		default:
			fail(w, http.StatusBadRequest, "Base.1.8.ActionParameterValueNotInList",
				fmt.Sprintf("the value %q for the parameter ResetType is not in the list of acceptable values", body.ResetType))
			return
		}
		b.since = time.Now()
		b.events = append(b.events, Event{ResetType: body.ResetType, At: b.since})
		w.WriteHeader(http.StatusNoContent)
	default:
		fail(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "no resource at "+r.URL.Path)
	}
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers with a Redfish error body.
func fail(w http.ResponseWriter, code int, id, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": id, "message": msg,
		"@Message.ExtendedInfo": []map[string]string{{"MessageId": id, "Message": msg, "Severity": "Critical"}},
	}})
}
