package cli

import (
	"context"
	"errors"
	"flag"

	"github.com/walt-testbed/walt/api"
)

func init() {
	register(
		&command{
			noun: "node", verb: "create", summary: "create a virtual WalT node",
			args: "node_name [setting=value ...]", minArgs: 1, maxArgs: -1,
			run: nodeCreate,
		},
		&command{
			noun: "node", verb: "remove", summary: "remove a virtual WalT node",
			args: "node_name", minArgs: 1, maxArgs: 1,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.force, "force", false, "remove a node used by another user without asking")
			},
			run: nodeRemove,
		},
		&command{
			noun: "node", verb: "console", summary: "print the console of a virtual node",
			args: "node_name", minArgs: 1, maxArgs: 1,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.follow, "follow", false, "keep printing what the node writes, until interrupted")
			},
			run: nodeConsole,
		},
	)
}

func nodeCreate(ctx context.Context, e *env, args []string) int {
	res, err := e.c.CreateVNode(ctx, api.CreateVNode{Name: args[0], Settings: args[1:], Requester: e.user})
	if err != nil {
		return e.fail(err)
	}
	for _, m := range res.Messages {
		printf(e.Stdout, "%s\n", m)
	}
	return ExitOK
}

func nodeRemove(ctx context.Context, e *env, args []string) int {
	res, err := e.c.RemoveVNode(ctx, args[0], e.user, e.o.force)
	if err != nil && e.confirmOthers(err) {
		res, err = e.c.RemoveVNode(ctx, args[0], e.user, true)
	}
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == api.CodeNotOwned {
			return ExitFailure // already explained
		}
		return e.fail(err)
	}
	for _, m := range res.Messages {
		printf(e.Stdout, "%s\n", m)
	}
	return ExitOK
}

func nodeConsole(ctx context.Context, e *env, args []string) int {
	if err := e.c.Console(ctx, args[0], e.o.follow, e.Stdout); err != nil {
		return e.fail(err)
	}
	return ExitOK
}
