package cli

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/walt-testbed/walt/api"
)

func init() {
	register(
		&command{
			noun: "device", verb: "show", summary: "print infos about devices",
			maxArgs: 0,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.json, "json", false, "print the devices as JSON")
			},
			run: deviceShow,
		},
		&command{
			noun: "device", verb: "add", summary: "add a device (switch or other) to the inventory",
			args: "name", minArgs: 1, maxArgs: 1,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.StringVar(&o.ip, "ip", "", "IP `address` of the device (required)")
				fs.StringVar(&o.mac, "mac", "", "MAC `address` (default: made up from the IP)")
				fs.StringVar(&o.typ, "type", "", "device `type`: switch, node or unknown (default unknown)")
			},
			run: deviceAdd,
		},
		&command{
			noun: "device", verb: "forget", summary: "forget a device and its settings",
			args: "device_name", minArgs: 1, maxArgs: 1,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.force, "force", false, "forget a node used by another user without asking")
			},
			run: deviceForget,
		},
		&command{
			noun: "device", verb: "config", summary: "get or set devices configuration",
			args: "device_set [setting=value ...]", minArgs: 1, maxArgs: -1,
			flags: forceConfigFlag,
			run:   func(ctx context.Context, e *env, args []string) int { return config(ctx, e, args, false) },
		},
	)
}

func deviceShow(ctx context.Context, e *env, _ []string) int {
	list, err := e.c.Devices(ctx)
	if err != nil {
		return e.fail(err)
	}
	if e.o.json {
		return printJSON(e, list)
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "name\ttype\tmac\tip\towner")
	for _, d := range list.Devices {
		printf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Name, d.Type, d.MAC, d.IP, d.Owner)
	}
	tw.Flush()
	return ExitOK
}

func deviceAdd(ctx context.Context, e *env, args []string) int {
	if e.o.ip == "" {
		fmt.Fprintf(e.Stderr, "Error: missing switch --ip\nTry: walt device add %s --ip 192.168.152.2 [--type switch]\n", args[0])
		return ExitUsage
	}
	d, err := e.c.AddDevice(ctx, api.AddDevice{Name: args[0], IP: e.o.ip, MAC: e.o.mac, Type: e.o.typ})
	if err != nil {
		return e.fail(err)
	}
	printf(e.Stdout, "Device %s added (%s, mac %s, ip %s).\n", d.Name, d.Type, d.MAC, d.IP)
	return ExitOK
}

// deviceForget forgets a device; a node used by another user needs
// --force or a confirmation, as for a reboot.
func deviceForget(ctx context.Context, e *env, args []string) int {
	err := e.c.ForgetDevice(ctx, args[0], e.user, e.o.force)
	if err != nil && e.confirmOthers(err) {
		err = e.c.ForgetDevice(ctx, args[0], e.user, true)
	}
	if err != nil {
		return e.failOwned(err)
	}
	fmt.Fprintf(e.Stdout, "Done.\n")
	return ExitOK
}

func forceConfigFlag(fs *flag.FlagSet, o *opts) {
	fs.BoolVar(&o.force, "force", false, "change the settings of nodes used by other users without asking")
}

// config shows (no settings) or changes the configuration of a set.
func config(ctx context.Context, e *env, args []string, nodesOnly bool) int {
	var res api.ConfigResult
	var err error
	if len(args) == 1 {
		res, err = e.c.Config(ctx, args[0], e.user, nodesOnly)
	} else {
		settings, code := e.settingsFromStdin(args[1:])
		if code != ExitOK {
			return code
		}
		req := api.ConfigRequest{Set: args[0], Settings: settings, NodesOnly: nodesOnly, Requester: e.user, Force: e.o.force}
		res, err = e.c.SetConfig(ctx, req)
		if err != nil && e.confirmOthers(err) {
			req.Force = true
			res, err = e.c.SetConfig(ctx, req)
		}
	}
	if err != nil {
		return e.failOwned(err)
	}
	if len(args) > 1 {
		for _, m := range res.Messages {
			printf(e.Stdout, "%s\n", m)
		}
		return ExitOK
	}
	printConfigGroups(e, res.Devices)
	return ExitOK
}

// printConfigGroups prints devices with identical settings together:
// "Nodes a and b have the following config applied:" then name=value lines.
func printConfigGroups(e *env, devs []api.DeviceConfig) {
	type group struct {
		typ   string
		lines []string
		names []string
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, d := range devs {
		var lines []string
		for _, s := range d.Settings {
			lines = append(lines, s.Name+"="+s.Value)
		}
		key := d.Type + "\n" + strings.Join(lines, "\n")
		g := byKey[key]
		if g == nil {
			g = &group{typ: d.Type, lines: lines}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.names = append(g.names, d.Name)
	}
	sort.SliceStable(groups, func(i, j int) bool { return groups[i].names[0] < groups[j].names[0] })
	for i, g := range groups {
		if i > 0 {
			fmt.Fprintln(e.Stdout)
		}
		singular, plural := g.typ, g.typ+"s"
		switch g.typ {
		case "switch":
			plural = "switches"
		case "unknown":
			singular, plural = "device", "devices"
		}
		verb := "has"
		if len(g.names) > 1 {
			verb = "have"
		}
		if len(g.lines) == 0 {
			printf(e.Stdout, "%s %s no config settings.\n", describe(g.names, singular, plural), verb)
			continue
		}
		printf(e.Stdout, "%s %s the following config applied:\n", describe(g.names, singular, plural), verb)
		for _, l := range g.lines {
			printf(e.Stdout, "%s\n", l)
		}
	}
}

// maxStdinValue bounds a setting value read from standard input.
const maxStdinValue = 4096

// settingsFromStdin replaces a setting given as `name=-` by name=<the first
// line of standard input>, so that a secret (snmp.community) stays off the
// command line, where every user of the machine can read it (ps). At most
// one setting may be read that way.
func (e *env) settingsFromStdin(settings []string) ([]string, int) {
	out := append([]string(nil), settings...)
	from := -1
	for i, s := range out {
		if name, ok := strings.CutSuffix(s, "=-"); ok && name != "" {
			if from >= 0 {
				fmt.Fprintf(e.Stderr, "Error: '%s' and '%s' both read their value from standard input: only one can\nTry: give the other value on the command line\n", out[from], s)
				return nil, ExitUsage
			}
			from = i
		}
	}
	if from < 0 {
		return out, ExitOK
	}
	name := strings.TrimSuffix(out[from], "=-")
	line, err := bufio.NewReaderSize(io.LimitReader(e.Stdin, maxStdinValue+2), maxStdinValue+2).ReadString('\n')
	if err != nil && err != io.EOF {
		e.errorf("read %s from standard input: %v", name, err)
		return nil, ExitFailure
	}
	value := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	switch {
	case len(value) > maxStdinValue:
		fmt.Fprintf(e.Stderr, "Error: %s: the value on standard input is longer than %d bytes\n", name, maxStdinValue)
		return nil, ExitUsage
	case value == "":
		fmt.Fprintf(e.Stderr, "Error: %s=-: no value on standard input\nTry: echo VALUE | walt device config DEVICE_SET %s=-\n", name, name)
		return nil, ExitUsage
	}
	out[from] = name + "=" + value
	return out, ExitOK
}
