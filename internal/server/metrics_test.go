package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/accounts/accountstest"
	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/testutil"
)

func getText(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", u, resp.Status, b)
	}
	return string(b)
}

// TestMetricsAfterReboot reboots a node softly and one the hard way (no
// driver: a failed fallback), completes the first with a new boot, and
// reads what GET /metrics says of it.
func TestMetricsAfterReboot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.addNode(t, "m1", reboottest.OK)
	e.addNode(t, "m2", reboottest.Refused)
	if _, err := e.c.Reboot(t.Context(), api.RebootRequest{Set: "m1,m2", Requester: "alice"}, nil); err != nil {
		t.Fatal(err)
	}
	nodes, err := e.c.Nodes(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Nodes {
		if n.Name == "m1" { // its new boot: an agent without boot ids reports again
			if _, err := e.c.ReportNode(t.Context(), api.NodeReport{MAC: n.MAC, IP: n.IP, Name: n.Name, Model: "rpi-b", BootMode: "network"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var body string
	testutil.Eventually(t, 10*time.Second, "the boot duration in /metrics", func() bool {
		body = getText(t, e.URL+"/metrics")
		// The reboot stream's request is counted once its handler has
		// returned, which may be just after the client read its end.
		return strings.Contains(body, "walt_boot_duration_seconds_count 1\n") &&
			strings.Contains(body, `walt_api_request_duration_seconds_count{code="200",route="POST /api/v1/reboots"} 1`)
	})
	for _, line := range []string{
		`walt_reboots_total{method="soft-reboot",outcome="ok"} 1`,
		`walt_reboots_total{method="hard-reboot",outcome="no-method"} 1`,
		`walt_hard_reboot_fallbacks_total 1`,
		`walt_nodes{state="booted"} 2`, // m2 untouched: its reboot failed
		`walt_nodes{state="down"} 0`,
		`walt_api_request_duration_seconds_count{code="200",route="POST /api/v1/reboots"} 1`,
		`go_goroutines `,
		`walt_store_request_duration_seconds_count{op="add_reboots"} `,
		`walt_store_request_errors_total{op="add_reboots"} 0`,
		// The tracker's flushes go through the timed store in one
		// transaction each, not as three writes.
		`walt_store_request_duration_seconds_count{op="set_boot_state"} `,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("GET /metrics lacks %q:\n%s", line, body)
		}
	}
	if strings.Contains(body, `op="set_boot_statuses"`) {
		t.Errorf("the tracker wrote boot statuses on their own, not in its one-transaction flush:\n%s", body)
	}
	for _, secret := range []string{"m1", "m2", "alice", "127.20."} {
		if strings.Contains(body, secret) {
			t.Errorf("GET /metrics shows %q:\n%s", secret, body)
		}
	}
}

// freePort returns a loopback port free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestPrometheusScrapes starts a real Prometheus (Debian's prometheus
// package) scraping the server every second, reboots a node through the
// API, and asks Prometheus for the reboot counter.
func TestPrometheusScrapes(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prometheus not installed (scripts/install-deps.sh installs it): %v", err)
		}
		t.Skipf("prometheus not installed: %v", err)
	}
	e := newEnv(t, nil)
	e.addNode(t, "p1", reboottest.OK)
	target := strings.TrimPrefix(e.URL, "http://")

	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	yml := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: walt\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(conf, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	web := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	out := new(testutil.Buffer)
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+web)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})

	if _, err := e.c.Reboot(t.Context(), api.RebootRequest{Set: "p1", Requester: "alice"}, nil); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"query": {`walt_reboots_total{method="soft-reboot",outcome="ok"}`}}
	testutil.EventuallyNil(t, 60*time.Second, "Prometheus reporting walt_reboots_total", func() error {
		v, err := promQuery(web, q)
		if err != nil {
			return err
		}
		if v != "1" {
			return fmt.Errorf("walt_reboots_total = %q, want 1", v)
		}
		return nil
	})
}

// promQuery asks Prometheus's HTTP API for an instant vector of one
// sample and returns its value.
func promQuery(addr string, q url.Values) (string, error) {
	resp, err := http.Get("http://" + addr + "/api/v1/query?" + q.Encode())
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return "", fmt.Errorf("query: %s: %w", resp.Status, err)
	}
	if r.Status != "success" || len(r.Data.Result) != 1 {
		return "", fmt.Errorf("query: status %q, %d series, want success and 1", r.Status, len(r.Data.Result))
	}
	v, _ := r.Data.Result[0].Value[1].(string)
	return v, nil
}

// TestMetricsSNMP reads the ports of a simulated switch and of one that
// does not answer, and finds both switches' SNMP latency and errors in
// GET /metrics, without the community.
func TestMetricsSNMP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, servertest.WithPoE(t))
	e.AddSwitch(t, "sw1", "127.69.255.1", snmpswitch.Config{}, "lldp.explore=true")
	mute, err := net.ListenPacket("udp", "127.69.255.2:0") // reads nothing, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	_, port, _ := net.SplitHostPort(mute.LocalAddr().String())
	if _, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: "sw2", IP: "127.69.255.2", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.SetConfig(t.Context(), api.ConfigRequest{Set: "sw2", Settings: []string{"snmp.version=2", "snmp.community=" + servertest.Community, "snmp.port=" + port, "lldp.explore=true"}}); err != nil {
		t.Fatal(err)
	}
	for _, sw := range []string{"sw1", "sw2"} {
		resp, err := accountstest.Get(t, e.URL+api.Prefix+"/switches/"+sw+"/ports", e.AdminToken)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Logf("ports of %s: %s %s", sw, resp.Status, b) // sw2: unavailable
		}
	}
	body := getText(t, e.URL+"/metrics")
	for _, line := range []string{
		`walt_snmp_request_errors_total{op="get",switch="sw1"} 0`,
		`walt_snmp_request_errors_total{op="walk",switch="sw2"} 1`,
		`walt_snmp_request_duration_seconds_count{op="walk",switch="sw2"} 1`,
		`walt_api_request_duration_seconds_count{code="200",route="GET /api/v1/switches/{name}/ports"} 1`,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("GET /metrics lacks %q:\n%s", line, body)
		}
	}
	if !strings.Contains(body, `walt_snmp_request_duration_seconds_count{op="get",switch="sw1"}`) {
		t.Errorf("GET /metrics lacks sw1's SNMP latency:\n%s", body)
	}
	if strings.Contains(body, servertest.Community) {
		t.Errorf("GET /metrics shows the community:\n%s", body)
	}
}
