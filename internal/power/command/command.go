// Package command switches nodes' power by running a command the admin
// configured (power.command): a PDU's, a relay's or a smart plug's tool.
// The command is an argument vector, never given to a shell: its words
// may hold placeholders ({name}, {mac}, {ip}, {action}) that become
// whole arguments or parts of one, whatever the values hold. A
// power-cycle runs it with action=off, waits the node's off time, and
// runs it with action=on; exit status 0 means done; its output goes to
// the log. A command cannot say whether the power was cut: the result
// says so.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/walt-testbed/walt/internal/power"
)

// Bounds of a template (docs/power.md).
const (
	MaxTemplate = 1024
	MaxWords    = 64
	// MaxOutput bounds the output kept (and logged) of one run.
	MaxOutput = 16 << 10
)

// Actions: the values of {action}.
const (
	ActionOff = "off"
	ActionOn  = "on"
)

// Placeholders a template may use.
var placeholders = []string{"{name}", "{mac}", "{ip}", "{action}"}

// Template is a parsed power.command.
type Template struct {
	words []string
}

// Parse checks a power.command value: words separated by spaces; a word
// with spaces goes in double quotes, in which \" and \\ stand for " and
// \. The first word is the program's absolute path, without
// placeholders; '{' only opens one of {name}, {mac}, {ip}, {action}.
// Control characters are refused.
func Parse(v string) (Template, error) {
	if v == "" || len(v) > MaxTemplate {
		return Template{}, fmt.Errorf("power.command: must have 1 to %d bytes (got %d)", MaxTemplate, len(v))
	}
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return Template{}, fmt.Errorf("power.command: control character at byte %d", i)
		case quoted && c == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\'):
			i++
			cur.WriteByte(v[i])
		case c == '"':
			quoted, inWord = !quoted, true
		case c == ' ' && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return Template{}, errors.New("power.command: unterminated double quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 || len(words) > MaxWords {
		return Template{}, fmt.Errorf("power.command: must have 1 to %d words (got %d)", MaxWords, len(words))
	}
	if !filepath.IsAbs(words[0]) || strings.Contains(words[0], "{") {
		return Template{}, fmt.Errorf("power.command: the program must be an absolute path without placeholders (got %.64q)", words[0])
	}
	for i, w := range words {
		if err := checkPlaceholders(w); err != nil {
			return Template{}, fmt.Errorf("power.command: word %d: %w", i+1, err)
		}
	}
	return Template{words: words}, nil
}

func checkPlaceholders(w string) error {
	for {
		i := strings.IndexByte(w, '{')
		if i < 0 {
			return nil
		}
		ok := false
		for _, p := range placeholders {
			if strings.HasPrefix(w[i:], p) {
				w, ok = w[i+len(p):], true
				break
			}
		}
		if !ok {
			end := min(len(w), i+12)
			return fmt.Errorf("unknown placeholder at %q (known: %s)", w[i:end], strings.Join(placeholders, " "))
		}
	}
}

// String is the template in the form Parse takes.
func (t Template) String() string {
	q := make([]string, len(t.words))
	for i, w := range t.words {
		if w == "" || strings.ContainsAny(w, ` "\`) {
			w = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(w) + `"`
		}
		q[i] = w
	}
	return strings.Join(q, " ")
}

// Node is what the placeholders stand for.
type Node struct {
	Name, MAC, IP string
}

// Argv returns the argument vector for n and action.
func (t Template) Argv(n Node, action string) []string {
	r := strings.NewReplacer("{name}", n.Name, "{mac}", n.MAC, "{ip}", n.IP, "{action}", action)
	out := make([]string, len(t.words))
	for i, w := range t.words {
		out[i] = r.Replace(w)
	}
	return out
}

// Target is one node's command.
type Target struct {
	Node     Node
	Template Template
	// Timeout bounds each run (power.timeout); OffTime is the least time
	// between the off run's end and the on run's start (power.off_time).
	Timeout, OffTime time.Duration
}

// Driver runs power commands. It is safe for concurrent use.
type Driver struct{ log *slog.Logger }

// New returns a driver; log gets each run's output.
func New(log *slog.Logger) *Driver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{log: log}
}

// NotVerified is the cut a command reports.
var NotVerified = power.Cut{Detail: "a power command cannot read the power state back"}

// Cycle runs the command with action off, waits the off time, and runs
// it with action on.
func (d *Driver) Cycle(ctx context.Context, t Target) (power.Cut, error) {
	if err := d.Run(ctx, t, ActionOff); err != nil {
		return NotVerified, err
	}
	tm := time.NewTimer(t.OffTime)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
		return NotVerified, fmt.Errorf("power command of %s: power left off: %w", t.Node.Name, ctx.Err())
	}
	return NotVerified, d.Run(ctx, t, ActionOn)
}

// Run runs the command once for action, under t.Timeout, without a
// shell, with an environment holding only PATH. The command and the
// processes it starts are killed when the time is up or ctx ends.
func (d *Driver) Run(ctx context.Context, t Target, action string) error {
	if len(t.Template.words) == 0 {
		return fmt.Errorf("power command of %s: none configured (power.command)", t.Node.Name)
	}
	argv := t.Template.Argv(t.Node, action)
	rctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Dir = "/"
	out := &capped{max: MaxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, killed whole: a script's children go too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		if line != "" {
			d.log.Info("power command output", "node", t.Node.Name, "action", action, "line", line)
		}
	}
	d.log.Info("power command done", "node", t.Node.Name, "action", action, "command", argv[0], "elapsed", elapsed, "err", err)
	if err == nil {
		return nil
	}
	what := fmt.Sprintf("power command %s (node %s, action %s)", argv[0], t.Node.Name, action)
	if rctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		return fmt.Errorf("%s: killed after power.timeout %s", what, t.Timeout)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if last := lastLine(out.String()); last != "" {
			return fmt.Errorf("%s: %s: %s", what, ee, last)
		}
		return fmt.Errorf("%s: %s", what, ee)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// capped keeps the first max bytes written to it.
type capped struct {
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) String() string { return c.buf.String() }
