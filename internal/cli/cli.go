// Package cli implements the walt command line: WalT's noun-verb syntax
// (walt node reboot NODE_SET) over the server API, through package client
// only. One file per noun. Data goes to stdout, messages to stderr; exit
// status 0 when everything worked, 1 when something failed, 2 for usage
// errors (docs/exit-codes.md).
package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/nodeset"
	"github.com/walt-testbed/walt/internal/version"
)

// Exit statuses.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Options is what a walt run gets from its process.
type Options struct {
	Args   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads environment variables (WALT_SERVER, WALT_USER,
	// WALT_TOKEN, and XDG_CONFIG_HOME and HOME for the user's
	// configuration directory).
	Getenv func(string) string
	// IsTerminal reports whether a stream is an interactive terminal;
	// default: a terminal test on *os.File.
	IsTerminal func(any) bool
}

// Main runs walt with the process's environment and returns the exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return Run(ctx, Options{Args: args, Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv})
}

// command is one noun-verb pair.
type command struct {
	noun, verb string
	summary    string
	// args describes the positional arguments for the help, e.g. "node_set".
	args string
	// nargs: minimum and maximum positional arguments (-1: no maximum).
	minArgs, maxArgs int
	flags            func(fs *flag.FlagSet, o *opts)
	run              func(ctx context.Context, e *env, args []string) int
	// hidden commands are for the completion scripts: not in the help,
	// never completed.
	hidden bool
}

// opts holds every flag any command may set.
type opts struct {
	server  string
	hard    bool
	json    bool
	force   bool
	all     bool
	ip      string
	mac     string
	typ     string
	follow  bool
	wait    bool // reboot --wait
	timeout int  // seconds; -1: none
	limit   int
	nodes   bool // completion names
	devices bool
	camp    campaignOpts
	// fingerprint is walt login's expected server certificate.
	fingerprint string
	audit       bool // log show --audit
}

// env is what a command runs with.
type env struct {
	Options
	o      *opts
	c      *client.Client
	user   string
	server string // the server's URL
	prompt bool   // stdin and stdout are a terminal
}

var commands []*command

func register(cs ...*command) { commands = append(commands, cs...) }

func (e *env) errorf(format string, args ...any) {
	printf(e.Stderr, "Error: "+format+"\n", args...) // errors quote names and replies from outside
}

// fail prints err the way users read it, with a hint when we have one,
// and returns the exit status.
func (e *env) fail(err error) int {
	e.errorf("%s", err)
	status := ExitFailure
	switch {
	case errors.Is(err, client.ErrCertChanged):
		fmt.Fprintf(e.Stderr, "Try: if its admin replaced the certificate on purpose (ask them for the new fingerprint), delete the line of %s from %s, then walt login again; else someone may be intercepting the connection.\n",
			pinKey(e.server), filepath.Join(configDir(e.Getenv), knownServersFile))
		return ExitFailure
	case errors.Is(err, api.ErrInvalid):
		status = ExitUsage
	case errors.Is(err, client.ErrServerUnreachable):
		fmt.Fprintf(e.Stderr, "Try: start walt-server, or point --server or WALT_SERVER at it.\n")
	case errors.Is(err, api.ErrInternal):
		fmt.Fprintf(e.Stderr, "Try: look for the error id in the server's log.\n")
	case errors.Is(err, api.ErrUnauthenticated):
		fmt.Fprintf(e.Stderr, "Try: walt login, with the token the server's admin made for you (walt-server user add NAME).\n")
	}
	return status
}

func isTerminal(f any) bool {
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(fd.Fd()), unix.TCGETS)
	return err == nil
}

// Run runs walt and returns the exit status.
func Run(ctx context.Context, o Options) int {
	if o.IsTerminal == nil {
		o.IsTerminal = isTerminal
	}
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if len(o.Args) == 1 && (o.Args[0] == "--version" || o.Args[0] == "-version") {
		version.Print(o.Stdout, "walt")
		return ExitOK
	}
	args, global, err := parseGlobal(o.Args)
	if err != nil {
		fmt.Fprintf(o.Stderr, "Error: %v\nTry: walt --help\n", err)
		return ExitUsage
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || len(args) == 1 && args[0] == "help" {
		printTopHelp(o.Stdout, "")
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	if args[0] == "login" { // walt login: walt server login
		args = append([]string{"server"}, args...)
	}
	noun := args[0]
	if !nounExists(noun) {
		fmt.Fprintf(o.Stderr, "Error: unknown category %q.\n", noun)
		printTopHelp(o.Stderr, "")
		return ExitUsage
	}
	if len(args) < 2 || args[1] == "-h" || args[1] == "--help" {
		w := o.Stdout
		if len(args) < 2 {
			w = o.Stderr
		}
		printTopHelp(w, noun)
		if len(args) < 2 {
			return ExitUsage
		}
		return ExitOK
	}
	cmd := findCommand(noun, args[1])
	if cmd == nil {
		fmt.Fprintf(o.Stderr, "Error: unknown command %q for %q.\n", args[1], "walt "+noun)
		printTopHelp(o.Stderr, noun)
		return ExitUsage
	}
	return runCommand(ctx, o, cmd, args[2:], global)
}

// parseGlobal takes the global switches (--server URL) placed before the
// category: "walt --server URL node show" is "walt node show --server URL".
func parseGlobal(args []string) ([]string, opts, error) {
	var g opts
	fs := flag.NewFlagSet("walt", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	globalFlags(fs, &g)
	if len(args) == 0 || !strings.HasPrefix(args[0], "-") || args[0] == "-h" || args[0] == "--help" {
		return args, g, nil
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return []string{"--help"}, g, nil
	} else if err != nil {
		return nil, g, err
	}
	return fs.Args(), g, nil
}

// globalFlags are the switches every command takes, before or after the
// category and command.
func globalFlags(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.server, "server", "", "walt server `URL` (default $WALT_SERVER, else server in ~/.config/walt/config, else "+client.DefaultServer+")")
}

func runCommand(ctx context.Context, o Options, cmd *command, args []string, global opts) int {
	e := &env{Options: o, o: &opts{}}
	fs := flag.NewFlagSet("walt "+cmd.noun+" "+cmd.verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	globalFlags(fs, e.o)
	if cmd.flags != nil {
		cmd.flags(fs, e.o)
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(o.Stdout, cmd, fs)
		return ExitOK
	}
	if err == nil && len(pos) < cmd.minArgs {
		err = fmt.Errorf("missing argument %s", strings.Fields(cmd.args)[len(pos)])
	}
	if err == nil && cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs {
		err = fmt.Errorf("unexpected argument %q", pos[cmd.maxArgs])
	}
	if err != nil {
		fmt.Fprintf(o.Stderr, "Error: %v\nTry: walt %s %s --help\n", err, cmd.noun, cmd.verb)
		return ExitUsage
	}
	server := e.o.server // after the command wins over before the category
	if server == "" {
		server = global.server
	}
	if server == "" {
		server = o.Getenv("WALT_SERVER")
	}
	e.user = o.Getenv("WALT_USER")
	if server == "" || e.user == "" {
		uc, err := loadUserConfig(o.Getenv, o.Stderr)
		if err != nil {
			fmt.Fprintf(o.Stderr, "Error: %v\n", err)
			return ExitUsage
		}
		server, e.user = cmp.Or(server, uc.server), cmp.Or(e.user, uc.user)
	}
	if server == "" {
		server = client.DefaultServer
	}
	httpc, err := serverHTTPClient(o.Getenv, server)
	if err != nil {
		fmt.Fprintf(o.Stderr, "Error: %v\n", err)
		return ExitUsage
	}
	if e.c, err = client.New(server, httpc); err != nil {
		fmt.Fprintf(o.Stderr, "Error: %v\n", err)
		return ExitUsage
	}
	e.server = server
	// The user is the token's (the server says who); WALT_USER or user in
	// the configuration file, if set, must name the same.
	tok, err := clientToken(o.Getenv, server)
	if err != nil {
		fmt.Fprintf(o.Stderr, "Error: %v\nTry: walt login\n", err)
		return ExitUsage
	}
	if tok != "" {
		e.c = e.c.WithToken(tok)
	}
	e.prompt = o.IsTerminal(o.Stdin) && o.IsTerminal(o.Stdout)
	return cmd.run(ctx, e, pos)
}

// parseInterspersed parses flags placed anywhere among the positional
// arguments, as WalT's CLI allows ("walt node reboot rpi1 --hard").
// "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func nounExists(noun string) bool {
	for _, c := range commands {
		if c.noun == noun {
			return true
		}
	}
	return false
}

func findCommand(noun, verb string) *command {
	for _, c := range commands {
		if c.noun == noun && c.verb == verb {
			return c
		}
	}
	return nil
}

// visibleCommands returns the commands users see, sorted by category, then
// command: the help and the completion list them in this stable order, not
// in registration order.
func visibleCommands() []*command {
	var out []*command
	for _, c := range commands {
		if !c.hidden {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].noun != out[j].noun {
			return out[i].noun < out[j].noun
		}
		return out[i].verb < out[j].verb
	})
	return out
}

func printTopHelp(w io.Writer, noun string) {
	fmt.Fprintf(w, "Usage:\n")
	if noun == "" {
		fmt.Fprintf(w, "    walt [--server URL] CATEGORY COMMAND [SWITCHES] [ARGS]\n\nCategories and commands:\n")
	} else {
		fmt.Fprintf(w, "    walt %s COMMAND [SWITCHES] [ARGS]\n\nCommands:\n", noun)
	}
	for _, c := range visibleCommands() {
		if noun == "" || c.noun == noun {
			fmt.Fprintf(w, "    %-22s %s\n", c.noun+" "+c.verb, c.summary)
		}
	}
	fmt.Fprintf(w, "\nRun 'walt CATEGORY COMMAND --help' for a command's switches, 'walt help list' for help topics.\n")
}

func printCommandHelp(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s\n\nUsage:\n    walt %s %s [SWITCHES] %s\n\nMeta-switches:\n    -h, --help          Prints this help message and quits\n\nSwitches:\n",
		cmd.summary, cmd.noun, cmd.verb, cmd.args)
	var lines []string
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		left := "--" + f.Name
		if name != "" {
			left += " " + name
		}
		lines = append(lines, fmt.Sprintf("    %-19s %s", left, usage))
	})
	sort.Strings(lines)
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

// describe names a group at the start of a sentence: "Nodes a and b".
func describe(names []string, singular, plural string) string {
	return nodeset.Capitalize(nodeset.Describe(names, singular, plural))
}
