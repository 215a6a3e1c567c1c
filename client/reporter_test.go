package client_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/server/servertest"
)

// A boot report the server could not take is sent again only while the
// node lives in that boot: once the node rebooted, a retried report
// would tell the server of a boot that is over (seen: a report retried
// over a server's restart completed a later campaign iteration).
func TestReportNotRetriedAfterTheBootEnded(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, addrs, nil)
	var reports atomic.Int32
	var up atomic.Bool
	up.Store(true)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/node-reports" && reports.Add(1) == 1 {
			// The first try fails as a server that cannot store the
			// boot answers; the node reboots meanwhile.
			up.Store(false)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(api.ErrorBody{Error: &api.Error{Code: api.CodeUnavailable, Message: "report again"}})
			return
		}
		e.Server.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	rep, err := client.NewReporter(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	err = rep.Report(t.Context(), api.NodeReport{MAC: "52:54:00:44:00:01", IP: "127.44.0.1", Name: "gone", Model: "pc-x86-64", BootID: "b1"}, up.Load)
	if !errors.Is(err, client.ErrBootEnded) {
		t.Fatalf("Report of a boot the node left = %v, want ErrBootEnded", err)
	}
	if n := reports.Load(); n != 1 {
		t.Errorf("%d reports sent, want 1: none after the node left the boot", n)
	}
	if nl, err := e.Client.Nodes(t.Context(), nil); err != nil || nl.NumNodes != 0 {
		t.Errorf("nodes known to the server: %+v, %v; want none", nl, err)
	}
}
