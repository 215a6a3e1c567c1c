package agent

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
)

// REBOOT arguments are key=value words sent by whoever connects to the
// agent, which needs no credentials: they are hostile input. Only known keys
// with checked values are kept, and a hook sees each only under a name of
// its own (ArgEnvPrefix + the key upper-cased, dots as underscores), set
// before the agent's own variables so that these always win.

// ArgEnvPrefix starts the environment name under which a hook receives an
// accepted REBOOT argument: kexec.allow=false becomes WALT_ARG_KEXEC_ALLOW=false.
const ArgEnvPrefix = "WALT_ARG_"

// rebootArgChecks are the REBOOT argument keys the agent accepts, each with
// the check of its value. WalT servers send none; walt-server sends
// kexec.allow.
var rebootArgChecks = map[string]func(string) bool{
	"kexec.allow": func(v string) bool { return v == "true" || v == "false" },
}

// KexecAllowEnv is the hook environment variable holding kexec.allow.
var KexecAllowEnv = ArgEnvName("kexec.allow")

// ArgEnvName is the environment name under which a hook receives the
// REBOOT argument key.
func ArgEnvName(key string) string {
	return ArgEnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

var argKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// FilterRebootArgs checks REBOOT's arguments. A word that is not key=value
// is an error naming it. The others are split into accepted ones (known key,
// valid value; the last one wins for a repeated key), returned as key=value
// in the order of their keys, and ignored ones, returned as given.
func FilterRebootArgs(args []string) (accepted, ignored []string, err error) {
	last := map[string]string{}
	for _, arg := range args {
		k, v, ok := strings.Cut(arg, "=")
		if !ok || !argKey.MatchString(k) {
			return nil, nil, fmt.Errorf("invalid REBOOT argument %q: want key=value", arg)
		}
		if check, known := rebootArgChecks[k]; known && check(v) {
			last[k] = v
		} else {
			ignored = append(ignored, arg)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(last)) {
		accepted = append(accepted, k+"="+last[k])
	}
	return accepted, ignored, nil
}

// hookEnv is a hook's environment: the agent's own environment without
// any variable a hook reads from the agent (so neither a stale WALT_ARG_*
// nor a walt_root inherited from whoever started the agent reaches it),
// then the accepted REBOOT arguments under their ArgEnvName, then the
// agent's variables, last so that they win.
func (a *Agent) hookEnv(accepted []string) []string {
	vnode := "0"
	if a.cfg.Virtual {
		vnode = "1"
	}
	own := []string{"walt_boot_mode=" + string(a.cfg.BootMode), "vnode_mode=" + vnode,
		"walt_root=" + a.cfg.Root, "walt_reboot_action=" + a.cfg.Action.String()}
	return buildHookEnv(os.Environ(), accepted, own)
}

func buildHookEnv(inherited, accepted, own []string) []string {
	env := make([]string, 0, len(inherited)+len(accepted)+len(own))
	for _, kv := range inherited {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, ArgEnvPrefix) || slices.ContainsFunc(own, func(o string) bool { return strings.HasPrefix(o, name+"=") }) {
			continue
		}
		env = append(env, kv)
	}
	for _, arg := range accepted {
		k, v, _ := strings.Cut(arg, "=")
		env = append(env, ArgEnvName(k)+"="+v)
	}
	return append(env, own...)
}

// logList bounds what a log line shows of peer-sent words: the first few,
// each cut to a readable length.
func logList(words []string) []string {
	const maxWords, maxLen = 8, 64
	out := make([]string, 0, min(len(words), maxWords+1))
	for i, w := range words {
		if i == maxWords {
			out = append(out, fmt.Sprintf("... (%d more)", len(words)-maxWords))
			break
		}
		if len(w) > maxLen {
			w = w[:maxLen] + "..."
		}
		out = append(out, w)
	}
	return out
}
