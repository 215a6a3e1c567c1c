package client

import (
	"context"
	"net/http"

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
