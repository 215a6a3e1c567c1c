package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/walt-testbed/walt/api"
)

// WithToken returns a copy of c that sends token (walt-server user add
// prints one) with every request, as "Authorization: Bearer TOKEN". The
// node-facing calls (reports, heartbeats) and Health need none.
func (c *Client) WithToken(token string) *Client {
	cc := *c
	cc.token = token
	return &cc
}

// WhoAmI returns the user of c's token.
func (c *Client) WhoAmI(ctx context.Context) (api.WhoAmI, error) {
	var out api.WhoAmI
	return out, c.call(ctx, http.MethodGet, "/whoami", nil, nil, &out)
}

// Audit reads the audit trail (admins only): the last limit entries (0:
// all, -1: the server's default, 100), then, with follow, each new one
// until ctx ends or fn fails.
func (c *Client) Audit(ctx context.Context, limit int, follow bool, fn func(api.AuditEntry) error) error {
	q := url.Values{}
	if limit >= 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if follow {
		q.Set("follow", "true")
	}
	resp, err := c.do(ctx, http.MethodGet, "/audit", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = readNDJSON(resp.Body, func(b []byte) (bool, error) {
		var e api.AuditEntry
		if err := json.Unmarshal(b, &e); err != nil {
			return false, fmt.Errorf("decode audit entry: %w", err)
		}
		return true, fn(e)
	})
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
