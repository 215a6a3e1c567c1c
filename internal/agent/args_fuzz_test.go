package agent

import (
	"strings"
	"testing"

	"github.com/walt-testbed/walt/internal/netservice"
)

// FuzzRebootArgs checks, for any REBOOT line, that the hook environment
// built from its arguments sets no variable but WALT_ARG_* ones with a
// checked value, never overrides the agent's own variables, and keeps the
// inherited ones a peer may not touch.
func FuzzRebootArgs(f *testing.F) {
	for _, seed := range []string{
		"REBOOT",
		"REBOOT kexec.allow=false",
		"REBOOT kexec.allow=true kexec.allow=maybe",
		"REBOOT walt_reboot_action=system PATH=/tmp/evil walt_root=/tmp/evilroot LD_PRELOAD=/x.so",
		"REBOOT WALT_ARG_KEXEC_ALLOW=true kexec_allow=true KEXEC.ALLOW=true",
		"REBOOT kexec.allow==true =x a= kexec.allow",
	} {
		f.Add(seed)
	}
	inherited := []string{"PATH=/usr/bin:/bin", "HOME=/root", "WALT_ARG_KEXEC_ALLOW=stale", "walt_root=/inherited"}
	own := []string{"walt_boot_mode=network", "vnode_mode=0", "walt_root=/img", "walt_reboot_action=exit"}
	f.Fuzz(func(t *testing.T, line string) {
		req, err := netservice.ParseRequest(line)
		if err != nil {
			return
		}
		accepted, ignored, err := FilterRebootArgs(req.Args)
		if err != nil {
			if !strings.Contains(err.Error(), "invalid REBOOT argument") {
				t.Fatalf("FilterRebootArgs(%q) = %v, want an error naming the argument", req.Args, err)
			}
			return
		}
		if len(accepted) > len(rebootArgChecks) || len(accepted)+len(ignored) > len(req.Args) {
			t.Fatalf("FilterRebootArgs(%q) = %q, %q: more than given or known", req.Args, accepted, ignored)
		}
		env := buildHookEnv(inherited, accepted, own)
		if got := env[len(env)-len(own):]; strings.Join(got, "\n") != strings.Join(own, "\n") {
			t.Fatalf("hook environment does not end with the agent's variables: %q", env)
		}
		seen := map[string]bool{}
		for i, kv := range env {
			name, value, _ := strings.Cut(kv, "=")
			if seen[name] {
				t.Fatalf("hook environment sets %s twice: %q", name, env)
			}
			seen[name] = true
			if i < len(env)-len(own) && strings.HasPrefix(name, ArgEnvPrefix) {
				if name != KexecAllowEnv || (value != "true" && value != "false") {
					t.Fatalf("REBOOT %q gave the hook %s", req.Args, kv)
				}
			}
		}
		if !seen["PATH"] || !seen["HOME"] {
			t.Fatalf("hook environment lost inherited variables: %q", env)
		}
	})
}
