package agent

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeKexec records what the hook asks for instead of doing it.
type fakeKexec struct {
	loaded, jumped []KexecPlan
	loadErr        error
}

func (f *fakeKexec) Load(p KexecPlan) error { f.loaded = append(f.loaded, p); return f.loadErr }
func (f *fakeKexec) Jump(p KexecPlan) error { f.jumped = append(f.jumped, p); return nil }

func writeFiles(t *testing.T, root string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		full := filepath.Join(root, p)
		dir := filepath.Dir(full)
		if strings.HasSuffix(p, "/") { // a directory
			dir = full
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if dir == full {
			continue
		}
		if err := os.WriteFile(full, []byte("image"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPlanKexec(t *testing.T) {
	const rel = "6.1.0-test-amd64"
	full := t.TempDir()
	writeFiles(t, full, "/boot/vmlinuz-"+rel, "/boot/initrd.img-"+rel, "/run/systemd/system/")
	generic := t.TempDir()
	writeFiles(t, generic, "/boot/vmlinuz")
	empty := t.TempDir()

	tests := []struct {
		name    string
		env     map[string]string
		want    KexecPlan
		decline string
	}{
		{"network mode, release kernel and initrd", map[string]string{"walt_root": full, "walt_boot_mode": "network"},
			KexecPlan{Kernel: full + "/boot/vmlinuz-" + rel, Initrd: full + "/boot/initrd.img-" + rel, Cmdline: "root=/dev/nfs ro walt.boot=kexec"}, ""},
		{"hybrid mode under systemd is orderly", map[string]string{"walt_root": full, "walt_boot_mode": "hybrid-volatile", KexecAllowEnv: "true"},
			KexecPlan{Kernel: full + "/boot/vmlinuz-" + rel, Initrd: full + "/boot/initrd.img-" + rel, Cmdline: "root=/dev/nfs ro walt.boot=kexec", Orderly: true}, ""},
		{"generic kernel name, no initrd", map[string]string{"walt_root": generic, "walt_boot_mode": "network"},
			KexecPlan{Kernel: generic + "/boot/vmlinuz", Cmdline: "root=/dev/nfs ro walt.boot=kexec"}, ""},
		{"kexec.allow=false", map[string]string{"walt_root": full, "walt_boot_mode": "network", KexecAllowEnv: "false"},
			KexecPlan{}, "Kexec is not allowed for this node (cf. walt node config)"},
		{"virtual node", map[string]string{"walt_root": full, "walt_boot_mode": "network", "vnode_mode": "1"},
			KexecPlan{}, "virtual nodes are restarted with their VM"},
		{"no kernel", map[string]string{"walt_root": empty, "walt_boot_mode": "network"},
			KexecPlan{}, "no kernel image for release " + rel},
		{"hybrid without systemd", map[string]string{"walt_root": generic, "walt_boot_mode": "hybrid-persistent"},
			KexecPlan{}, "needs systemd"},
		{"unknown boot mode", map[string]string{"walt_root": full, "walt_boot_mode": "turbo"},
			KexecPlan{}, `invalid boot mode "turbo"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := planKexec(kexecEnv{getenv: func(k string) string { return tt.env[k] }, release: rel, cmdline: "root=/dev/nfs ro\n"})
			if tt.decline != "" {
				if !errors.Is(err, errDecline) || !strings.Contains(err.Error(), tt.decline) {
					t.Fatalf("planKexec = %+v, %v; want a decline with %q", got, err, tt.decline)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunKexecHook checks the exit statuses the agent acts on, and that the
// loader is only reached when the reboot action is "system".
func TestRunKexecHook(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, "/boot/vmlinuz-"+kernelRelease())
	base := map[string]string{"walt_root": root, "walt_boot_mode": "network", "walt_reboot_action": "system"}
	with := func(k, v string) func(string) string {
		return func(key string) string {
			if key == k {
				return v
			}
			return base[key]
		}
	}
	tests := []struct {
		name       string
		getenv     func(string) string
		loadErr    error
		wantStatus int
		wantLoads  int
		wantJumps  int
		wantOut    string
	}{
		{"kexec", with("", ""), nil, 0, 1, 1, ""},
		{"load fails", with("", ""), errors.New("operation not permitted"), HookDeclined, 1, 0, "operation not permitted"},
		{"not allowed", with(KexecAllowEnv, "false"), nil, HookDeclined, 0, 0, "Kexec is not allowed"},
		{"dry run under the log action", with("walt_reboot_action", "log:/tmp/j"), nil, HookDeclined, 0, 0, "dry run"},
		{"dry run without an action", with("walt_reboot_action", ""), nil, HookDeclined, 0, 0, "dry run"},
		{"not run by the agent", with("walt_boot_mode", ""), nil, 2, 0, 0, "run by walt-node's reboot procedure only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &fakeKexec{loadErr: tt.loadErr}
			var out bytes.Buffer
			status := RunKexecHook(tt.getenv, k, &out)
			if status != tt.wantStatus || len(k.loaded) != tt.wantLoads || len(k.jumped) != tt.wantJumps {
				t.Errorf("status %d, %d loads, %d jumps; want %d, %d, %d (output %q)",
					status, len(k.loaded), len(k.jumped), tt.wantStatus, tt.wantLoads, tt.wantJumps, out.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output %q lacks %q", out.String(), tt.wantOut)
			}
		})
	}
}

// TestKexecBootParam: the hook marks the kernel it starts, once, whatever
// the running kernel's walt.boot= parameters; walt-node reads the mark
// back as node method kexec, and only that exact parameter.
func TestKexecBootParam(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"root=/dev/nfs ro\n", "root=/dev/nfs ro walt.boot=kexec"},
		{"root=/dev/nfs walt.boot=kexec ro", "root=/dev/nfs ro walt.boot=kexec"},
		{"walt.boot=firmware  quiet", "quiet walt.boot=kexec"},
		{"", "walt.boot=kexec"},
		{`root=/dev/nfs  dyndbg="file a.c +p"`, `root=/dev/nfs  dyndbg="file a.c +p" walt.boot=kexec`},
	} {
		if got := withKexecParam(tt.in); got != tt.want {
			t.Errorf("withKexecParam(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if m := NodeMethod(withKexecParam(tt.in)); m != NodeMethodKexec {
			t.Errorf("NodeMethod(withKexecParam(%q)) = %q", tt.in, m)
		}
	}
	for in, want := range map[string]string{
		"root=/dev/nfs ro": "", "walt.boot=kexec": "kexec", "a walt.boot=kexec\n": "kexec", "walt.boot=kexec walt.boot=other": "",
		"walt.boot=kexecx": "", "xwalt.boot=kexec": "", "walt.boot=KEXEC": "",
	} {
		if got := NodeMethod(in); got != want {
			t.Errorf("NodeMethod(%q) = %q, want %q", in, got, want)
		}
	}
	path := filepath.Join(t.TempDir(), "cmdline")
	if got := ReadNodeMethod(path); got != "" {
		t.Errorf("ReadNodeMethod of a missing file = %q", got)
	}
	os.WriteFile(path, []byte("BOOT_IMAGE=/vmlinuz walt.boot=kexec\n"), 0o644)
	if got := ReadNodeMethod(path); got != NodeMethodKexec {
		t.Errorf("ReadNodeMethod = %q, want kexec", got)
	}
}

// FuzzKexecBootParam: whatever the running kernel's command line, the
// kernel the hook starts carries exactly one walt.boot= parameter, its
// mark, and keeps every other parameter; a command line tells kexec or
// nothing.
func FuzzKexecBootParam(f *testing.F) {
	for _, s := range []string{"root=/dev/nfs ro\n", "walt.boot=kexec", "walt.boot=x walt.boot=kexec", "\t\n", "a=b  c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if m := NodeMethod(s); m != "" && m != NodeMethodKexec {
			t.Fatalf("NodeMethod(%q) = %q", s, m)
		}
		out := withKexecParam(s)
		var marks, others int
		for _, f := range strings.Fields(out) {
			if strings.HasPrefix(f, "walt.boot=") {
				marks++
			} else {
				others++
			}
		}
		want := 0
		for _, f := range strings.Fields(s) {
			if !strings.HasPrefix(f, "walt.boot=") {
				want++
			}
		}
		if marks != 1 || others != want || NodeMethod(out) != NodeMethodKexec {
			t.Fatalf("withKexecParam(%q) = %q", s, out)
		}
	})
}
