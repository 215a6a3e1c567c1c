package version

import (
	"runtime/debug"
	"testing"
)

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"nothing recorded", debug.BuildInfo{}, "(devel)"},
		{"module version only", debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{"git checkout", debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261201220000-3980c4c0e1f2"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "3980c4c0e1f2a7b8c9d0"}, {Key: "vcs.modified", Value: "false"}}},
			"v0.0.0-20261201220000-3980c4c0e1f2 (3980c4c0e1f2)"},
		{"modified tree", debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}},
			"(devel) (abc, modified)"},
	} {
		if got := describe(&tc.bi); got != tc.want {
			t.Errorf("%s: describe() = %q, want %q", tc.name, got, tc.want)
		}
	}
}
