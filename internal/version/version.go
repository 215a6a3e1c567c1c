// Package version tells which build of walt is running, from the build
// information the Go toolchain embeds: the module version and, for a build
// from a git checkout, the commit and whether the tree was modified.
package version

import (
	"runtime/debug"
	"sync"
)

// String returns the running binary's version, such as
// "v0.0.0-20261201220000-3980c4c0e1f2 (3980c4c0e1f2, modified)", or
// "(devel)" when the toolchain recorded none.
var String = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	return describe(bi)
})

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
