package vnode

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
)

// ExitRebooted is the status walt-node exits with under --reboot-action exit
// (agent.ExitRebooted): "I rebooted, start me again".
const ExitRebooted = 10

// ProcessBackend runs each vnode as a walt-node process listening on the
// vnode's own loopback address, with --reboot-action exit: a soft reboot
// makes it exit with status 10 and the supervisor starts it again. There is
// no kernel and no console beyond the agent's log.
type ProcessBackend struct {
	agent string
	flags map[string]bool
}

var _ Backend = (*ProcessBackend)(nil)

// NewProcessBackend checks that agentPath runs and finds which optional
// flags it has.
func NewProcessBackend(agentPath string) (*ProcessBackend, error) {
	flags, err := agentFlags(agentPath)
	if err != nil {
		return nil, fmt.Errorf("process backend: %w", err)
	}
	return &ProcessBackend{agent: agentPath, flags: flags}, nil
}

func (b *ProcessBackend) Name() string { return "process" }

func (b *ProcessBackend) Command(m Machine) (*exec.Cmd, error) {
	args := []string{
		"--config", "/dev/null",
		"--listen", net.JoinHostPort(m.Addr.String(), strconv.Itoa(AgentPort)),
		"--reboot-action", "exit", "--virtual", "true", "--boot-mode", "network",
	}
	args = append(args, identityFlags(b.flags, m, m.ServerURL)...)
	cmd := exec.Command(b.agent, args...)
	cmd.Env = cleanEnv()
	return cmd, nil
}

func (b *ProcessBackend) ExitReason(err error) (string, bool) {
	if err == nil {
		return "agent stopped (exit status 0)", false
	}
	switch code, sig := exitStatus(err); {
	case sig != 0:
		return "agent killed by signal " + sig.String(), false
	case code == ExitRebooted:
		return "agent rebooted (exit status 10)", true
	case code >= 0:
		return "agent failed (exit status " + strconv.Itoa(code) + ")", false
	}
	return "agent failed: " + err.Error(), false
}

// identityFlags are the self-registration flags the agent supports.
func identityFlags(known map[string]bool, m Machine, server string) []string {
	var args []string
	for _, kv := range [][2]string{{"server", server}, {"name", m.Name}, {"mac", m.MAC}, {"model", m.Model}} {
		if kv[1] != "" && known[kv[0]] {
			args = append(args, "--"+kv[0], kv[1])
		}
	}
	// The server reaches an agent on loopback from 127.0.0.1, whatever
	// address its URL names: the agent, obeying its server only, allows it.
	if server != "" && known["allow-from"] {
		args = append(args, "--allow-from", "127.0.0.1")
	}
	return args
}
