package vnode

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoServerImports keeps the supervisor below the server: nothing under
// internal/vnode, test harnesses included, imports internal/server (the
// server's vnode harness is internal/server/servertest/vnodetest).
func TestNoServerImports(t *testing.T) {
	t.Parallel()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-test", "-deps", "./...").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "/internal/server") {
			t.Errorf("a package under internal/vnode imports %s", dep)
		}
	}
}
