package client

import (
	"context"
	"net/http"
	"time"

	"github.com/walt-testbed/walt/api"
)

// Health returns the server's readiness answer (GET /api/v1/health).
func (c *Client) Health(ctx context.Context) (api.Health, error) {
	var out api.Health
	return out, c.call(ctx, http.MethodGet, "/health", nil, nil, &out)
}

// WaitHealthy asks for the readiness answer every interval until the server
// gives one or ctx ends; it then returns the last error that was not ctx's
// own (such as "connection refused").
func (c *Client) WaitHealthy(ctx context.Context, interval time.Duration) (api.Health, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last error
	for {
		h, err := c.Health(ctx)
		switch {
		case err == nil:
			return h, nil
		case ctx.Err() == nil || last == nil:
			last = err
		}
		select {
		case <-ctx.Done():
			return h, last
		case <-t.C:
		}
	}
}
