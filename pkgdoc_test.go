// The module's root holds no package, only checks that span the module.
package walt_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path"
	"strings"
	"testing"
)

// TestPackageDocs checks that every package of the module has a doc
// comment in its non-test files, beginning as go doc expects: "Package
// name ..." for a library, "Command name ..." for a main package named
// after its directory (staticcheck's ST1000 asks only for the comment).
func TestPackageDocs(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-json=ImportPath,Name,Doc,GoFiles", "github.com/walt-testbed/walt/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p struct {
			ImportPath, Name, Doc string
			GoFiles               []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if len(p.GoFiles) == 0 {
			continue // tests only, like this one
		}
		checked++
		if problem := docProblem(p.ImportPath, p.Name, p.Doc); problem != "" {
			t.Errorf("package %s: %s", p.ImportPath, problem)
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d packages, want the whole module", checked)
	}
}

// docProblem says what is wrong with a package's doc synopsis, or "".
func docProblem(importPath, name, doc string) string {
	want := "Package " + name + " "
	if name == "main" {
		want = "Command " + path.Base(importPath) + " "
	}
	switch {
	case doc == "":
		return "no doc comment (write one before the package clause of one non-test file, beginning " + strings.TrimSpace(want) + ")"
	case !strings.HasPrefix(doc, want):
		return "doc comment begins " + quoteStart(doc) + ", want " + strings.TrimSpace(want) + " ..."
	}
	return ""
}

func quoteStart(s string) string {
	if f := strings.Fields(s); len(f) > 2 {
		s = strings.Join(f[:2], " ") + " ..."
	}
	return `"` + s + `"`
}
