package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// walt-node runs on every node: it must stay free of the server, the store
// and SQL drivers. The client and api packages are allowed (it reports
// itself through them).
func TestWaltNodeImports(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "github.com/walt-testbed/walt/cmd/walt-node").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"database/sql", "modernc.org/", "github.com/jackc/",
		"github.com/walt-testbed/walt/internal/store", "github.com/walt-testbed/walt/internal/server",
		"github.com/walt-testbed/walt/internal/reboot", "github.com/walt-testbed/walt/internal/cli",
		"testing",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps returned %d packages, want the whole graph", len(deps))
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f) && (strings.HasSuffix(f, "/") || strings.HasPrefix(dep, f+"/")) {
				t.Errorf("walt-node depends on %s", dep)
			}
		}
	}
}
