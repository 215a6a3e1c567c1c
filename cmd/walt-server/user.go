package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/walt-testbed/walt/internal/accounts"
	"github.com/walt-testbed/walt/internal/auth"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// walt-server [FLAGS] user add|list|remove|token|revoke: account
// management on the server host, on the store the flags choose (--data,
// --db, the configuration file), while the server runs or not. A token is
// printed once, alone on stdout, so that scripts can take it:
// TOKEN=$(walt-server user add alice).

const userUsage = `Usage:
    walt-server [--data DIR | --db URL] user add NAME [--admin] [--expires DURATION]
    walt-server [--data DIR | --db URL] user token NAME [--expires DURATION] [--keep]
    walt-server [--data DIR | --db URL] user revoke NAME
    walt-server [--data DIR | --db URL] user remove NAME
    walt-server [--data DIR | --db URL] user list [--json]

add prints the new user's token, once; token prints a new one, revoking the
others unless --keep; revoke removes every token of a user; remove deletes
the account and its tokens. DURATION: 90d, 12h, 30m (default: never expires).
`

// maxExpiry bounds --expires.
const maxExpiry = 10 * 365 * 24 * time.Hour

// parseExpiry reads --expires: a Go duration or a number of days ("90d");
// "" is never.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return time.Time{}, fmt.Errorf("--expires %q: want a duration such as 90d, 12h or 30m", s)
		}
		d = time.Duration(n) * 24 * time.Hour
		if n > int(maxExpiry/(24*time.Hour)) {
			d = maxExpiry + 1
		}
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return time.Time{}, fmt.Errorf("--expires %q: want a duration such as 90d, 12h or 30m", s)
		}
	}
	if d <= 0 || d > maxExpiry {
		return time.Time{}, fmt.Errorf("--expires %s: must be between 1s and %dd", s, maxExpiry/(24*time.Hour))
	}
	return now.Add(d), nil
}

// runUser runs a user command on st.
func runUser(ctx context.Context, st store.Store, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, userUsage)
		if len(args) == 0 {
			return errors.New("user: missing command (add, list, remove, token, revoke)")
		}
		return flag.ErrHelp
	}
	verb := args[0]
	fs := flag.NewFlagSet("walt-server user "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, userUsage) }
	admin := fs.Bool("admin", false, "the user is an admin (add)")
	expires := fs.String("expires", "", "the token expires after `DURATION` (add, token)")
	keep := fs.Bool("keep", false, "keep the user's other tokens (token)")
	asJSON := fs.Bool("json", false, "print JSON (list)")
	// NAME before or after the flags.
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	wantArgs := 1
	if verb == "list" {
		wantArgs = 0
	}
	if len(pos) != wantArgs {
		fmt.Fprint(stderr, userUsage)
		return fmt.Errorf("user %s: want %d argument(s), got %d", verb, wantArgs, len(pos))
	}
	exp, err := parseExpiry(*expires, time.Now())
	if err != nil {
		return err
	}
	var name string
	if wantArgs == 1 {
		name = pos[0]
		if err := auth.CheckUserName(name); err != nil {
			return err
		}
	}
	switch verb {
	case "add":
		tok, err := accounts.Add(ctx, st, name, *admin, exp)
		if errors.Is(err, vocab.ErrConflict) {
			return fmt.Errorf("user %s exists already (a new token: walt-server user token %s)", name, name)
		}
		if err != nil {
			return err
		}
		role := "user"
		if *admin {
			role = "admin"
		}
		fmt.Fprintf(stderr, "Added %s %s%s. The token, shown this once (give it to walt login, or as WALT_TOKEN):\n", role, name, expiryNote(exp))
		fmt.Fprintln(stdout, tok.Reveal())
	case "token":
		tok, err := accounts.Renew(ctx, st, name, exp, *keep)
		if err != nil {
			return fmt.Errorf("new token for %s: %w", name, err)
		}
		fmt.Fprintf(stderr, "New token for %s%s, shown this once:\n", name, expiryNote(exp))
		fmt.Fprintln(stdout, tok.Reveal())
	case "revoke":
		n, err := st.RevokeTokens(ctx, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Revoked %d token(s) of %s.\n", n, name)
	case "remove":
		if err := st.RemoveUser(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Removed user %s and their tokens (the nodes they own stay theirs until released).\n", name)
	case "list":
		users, err := st.Users(ctx)
		if err != nil {
			return err
		}
		return printUsers(stdout, users, *asJSON, time.Now())
	default:
		fmt.Fprint(stderr, userUsage)
		return fmt.Errorf("user: unknown command %q (add, list, remove, token, revoke)", verb)
	}
	return nil
}

func expiryNote(exp time.Time) string {
	if exp.IsZero() {
		return ""
	}
	return " (token expires " + exp.UTC().Format(time.RFC3339) + ")"
}

// userInfo is a line of user list --json: no hash, no secret.
type userInfo struct {
	Name    string      `json:"name"`
	Admin   bool        `json:"admin"`
	Created time.Time   `json:"created"`
	Tokens  []tokenInfo `json:"tokens"`
}

type tokenInfo struct {
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
	Expired bool       `json:"expired"`
}

func printUsers(w io.Writer, users []store.User, asJSON bool, now time.Time) error {
	infos := make([]userInfo, 0, len(users))
	for _, u := range users {
		ui := userInfo{Name: u.Name, Admin: u.Admin, Created: u.CreatedAt, Tokens: []tokenInfo{}}
		for _, t := range u.Tokens {
			ti := tokenInfo{Created: t.CreatedAt}
			if !t.ExpiresAt.IsZero() {
				exp := t.ExpiresAt
				ti.Expires, ti.Expired = &exp, !now.Before(exp)
			}
			ui.Tokens = append(ui.Tokens, ti)
		}
		infos = append(infos, ui)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(infos)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADMIN\tTOKENS\tEXPIRES\tCREATED")
	for _, u := range infos {
		exp := "-"
		for _, t := range u.Tokens {
			switch {
			case t.Expires == nil:
				exp = "never"
			case exp != "never" && !t.Expired:
				exp = t.Expires.UTC().Format(time.DateOnly)
			case exp == "-":
				exp = "expired"
			}
		}
		fmt.Fprintf(tw, "%s\t%t\t%d\t%s\t%s\n", u.Name, u.Admin, len(u.Tokens), exp, u.Created.UTC().Format(time.DateOnly))
	}
	return tw.Flush()
}
