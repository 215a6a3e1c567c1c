// Package version tells which build of walt is running, from the build
// information the Go toolchain embeds: the module version and, for a build
// from a git checkout, the commit and whether the tree was modified.
package version

import (
	"fmt"
	"io"
	"runtime/debug"
	"sync"
)

// stamp, when set at link time (go build -ldflags "-X
// github.com/walt-testbed/walt/internal/version.stamp=0.1.0"), is the
// version: packages are built that way, where the build information may
// lack the commit (-buildvcs=false, or a tree without .git).
var stamp string

// String returns the running binary's version, such as
// "v0.0.0-20261201220000-3980c4c0e1f2 (3980c4c0e1f2, modified)", or
// "(devel)" when the toolchain recorded none.
var String = sync.OnceValue(func() string {
	if stamp != "" {
		return stamp
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	return describe(bi)
})

// Print writes the answer of a program's --version: its name and version.
func Print(w io.Writer, program string) {
	fmt.Fprintf(w, "%s %s\n", program, String())
}

func describe(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return v
	}
	return v + " (" + rev + modified + ")"
}
