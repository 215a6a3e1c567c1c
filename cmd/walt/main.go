// Command walt is the WalT testbed's command line tool:
// walt node reboot [--hard] NODE_SET, walt node show, walt device config...
// It talks to walt-server (--server URL, $WALT_SERVER, default
// http://127.0.0.1:12345).
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/walt-testbed/walt/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
