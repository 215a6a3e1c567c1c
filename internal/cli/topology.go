package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/bound"
)

func init() {
	jsonFlag := func(fs *flag.FlagSet, o *opts) { fs.BoolVar(&o.json, "json", false, "print the answer as JSON") }
	register(
		&command{
			noun: "device", verb: "rescan", summary: "find which device sits on which switch port (LLDP)",
			args: "[device_set]", maxArgs: 1, flags: jsonFlag, run: deviceRescan,
		},
		&command{
			noun: "device", verb: "tree", summary: "print the switches and the devices on their ports",
			maxArgs: 0, flags: jsonFlag, run: deviceTree,
		},
		&command{
			noun: "device", verb: "port-config", summary: "print the ports of a switch, their PoE state and devices",
			args: "switch_name", minArgs: 1, maxArgs: 1, flags: jsonFlag, run: devicePortConfig,
		},
		&command{
			noun: "device", verb: "link", summary: "record the switch port of a node (switches without LLDP)",
			args: "node_name switch_name port", minArgs: 3, maxArgs: 3, run: deviceLink,
		},
	)
}

func deviceRescan(ctx context.Context, e *env, args []string) int {
	req := api.RescanRequest{Requester: e.user}
	if len(args) == 1 {
		req.Set = args[0]
	}
	res, err := e.c.Rescan(ctx, req)
	if err != nil {
		return e.fail(err)
	}
	status := ExitOK
	for _, s := range res.Switches {
		if !s.OK {
			status = ExitFailure
		}
	}
	if e.o.json {
		printJSON(e, res)
		return status
	}
	counts := map[string]int{}
	for _, s := range res.Switches {
		if s.OK {
			printf(e.Stdout, "Switch %s: %d LLDP neighbour%s read.\n", s.Name, s.Neighbours, pluralS(s.Neighbours))
		} else {
			printf(e.Stderr, "Switch %s: scan failed (%s)\n", s.Name, s.Error)
		}
	}
	for _, c := range res.Changes {
		counts[c.Change]++
		printf(e.Stdout, "%s\n", changeLine(c))
	}
	for _, m := range res.Messages {
		printf(e.Stderr, "Note: %s\n", m)
	}
	ok := len(res.Switches) - countFailed(res.Switches)
	fmt.Fprintf(e.Stdout, "Done: %d of %d switch%s scanned; %d new, %d moved, %d removed, %d not seen.\n",
		ok, len(res.Switches), map[bool]string{true: "", false: "es"}[len(res.Switches) == 1],
		counts[api.LinkNew], counts[api.LinkMoved], counts[api.LinkGone], counts[api.LinkUnseen])
	return status
}

func countFailed(ss []api.ScannedSwitch) int {
	n := 0
	for _, s := range ss {
		if !s.OK {
			n++
		}
	}
	return n
}

func pluralS(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// changeLine says one rescan change as a sentence.
func changeLine(c api.LinkChange) string {
	who := "Node " + c.Device
	if c.Type != "node" {
		who = "Device " + c.Device
	}
	at := fmt.Sprintf("%s port %d", c.Switch, c.Port)
	switch c.Change {
	case api.LinkNew:
		line := who + ": new on " + at
		if c.Added {
			line += fmt.Sprintf(" (not in the inventory: added as an unknown device, mac %s", c.MAC)
			if c.SysName != "" {
				line += fmt.Sprintf(", LLDP name %q", c.SysName)
			}
			line += ")"
		}
		return line + "."
	case api.LinkMoved:
		return fmt.Sprintf("%s: moved from %s port %d to %s.", who, c.FromSwitch, c.FromPort, at)
	case api.LinkGone:
		return fmt.Sprintf("%s: removed from %s (%s is there now).", who, at, c.ReplacedBy)
	case api.LinkUnseen:
		why := "link kept"
		if c.PoEOff != "" {
			why += "; PoE off: " + c.PoEOff
		}
		return fmt.Sprintf("%s: not seen on %s (%s).", who, at, why)
	}
	return fmt.Sprintf("%s: %s on %s.", who, c.Change, at)
}

func deviceNames(ds []api.PortDevice) string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Name
	}
	return strings.Join(names, ",")
}

func deviceTree(ctx context.Context, e *env, _ []string) int {
	topo, err := e.c.Topology(ctx)
	if err != nil {
		return e.fail(err)
	}
	if e.o.json {
		return printJSON(e, topo)
	}
	for _, sw := range topo.Switches {
		printf(e.Stdout, "%s\n", sw.Name)
		if len(sw.Ports) == 0 {
			fmt.Fprintf(e.Stdout, "└── (no device recorded)\n")
		}
		for i, p := range sw.Ports {
			branch := "├──"
			if i == len(sw.Ports)-1 {
				branch = "└──"
			}
			words := []string{fmt.Sprintf("%s %d:", branch, p.Port)}
			if len(p.Devices) > 0 {
				words = append(words, deviceNames(p.Devices))
			}
			if p.PoEOff != "" {
				words = append(words, "(PoE off: "+p.PoEOff+")")
			}
			printf(e.Stdout, "%s\n", strings.Join(words, " "))
		}
	}
	if len(topo.Unplaced) > 0 {
		printf(e.Stdout, "%s: switch port unknown (walt device rescan, or walt device link).\n",
			describe(topo.Unplaced, "node", "nodes"))
	}
	return ExitOK
}

// devicePortConfig prints WalT's port view:
// `<port>: name="<name>" poe=<on|off|unavailable> peer=<device>  # <poeoff reason>`.
func devicePortConfig(ctx context.Context, e *env, args []string) int {
	pc, err := e.c.SwitchPorts(ctx, args[0])
	if err != nil {
		return e.fail(err)
	}
	if e.o.json {
		return printJSON(e, pc)
	}
	for _, p := range pc.Ports {
		line := fmt.Sprintf("%d: name=%q poe=%s", p.Port, p.Name, p.PoE)
		if len(p.Devices) > 0 {
			line += " peer=" + deviceNames(p.Devices)
		}
		if p.PoEOff != "" {
			line += "  # " + p.PoEOff
		}
		printf(e.Stdout, "%s\n", line)
	}
	if !pc.PoEReboots {
		printf(e.Stderr, "Note: poe.reboots is false on %s: walt will not switch its ports off (hard reboots, powersave).\n", pc.Switch)
	}
	return ExitOK
}

// linkPortRange is the server's bound on link ports: LLDP-MIB's
// LldpPortNumber, 1 to 4096.
var linkPortRange = bound.Int{Name: "port", Min: 1, Max: 4096}

func deviceLink(ctx context.Context, e *env, args []string) int {
	port, err := linkPortRange.Parse(args[2])
	if errors.Is(err, bound.ErrNotNumber) {
		fmt.Fprintf(e.Stderr, "Error: port %q is not a port number (1, 2, ...)\nTry: walt device link %s %s 5\n", args[2], args[0], args[1])
		return ExitUsage
	}
	if err != nil {
		fmt.Fprintf(e.Stderr, "Error: %v\nTry: walt device link %s %s 5\n", err, args[0], args[1])
		return ExitUsage
	}
	if err := e.c.SetLink(ctx, api.Link{Node: args[0], Switch: args[1], Port: int(port)}); err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.Stdout, "Node %s is on %s port %d.\n", args[0], args[1], port)
	return ExitOK
}
