package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/walt-testbed/walt/api"
)

// CreateVNode creates a virtual node owned by the requester and starts it.
func (c *Client) CreateVNode(ctx context.Context, req api.CreateVNode) (api.VNodeResult, error) {
	var out api.VNodeResult
	return out, c.call(ctx, http.MethodPost, "/vnodes", nil, req, &out)
}

// RemoveVNode stops a virtual node and forgets it. Without force, a node
// owned by another user is refused with api.ErrNotOwned.
func (c *Client) RemoveVNode(ctx context.Context, name, requester string, force bool) (api.VNodeResult, error) {
	q := url.Values{"requester": {requester}}
	if force {
		q.Set("force", "true")
	}
	var out api.VNodeResult
	p, err := namePath("/vnodes/", name, "")
	if err != nil {
		return out, err
	}
	return out, c.call(ctx, http.MethodDelete, p, q, nil, &out)
}

// VNodes lists the virtual nodes the server runs, with their machines.
func (c *Client) VNodes(ctx context.Context) (api.VNodeList, error) {
	var out api.VNodeList
	return out, c.call(ctx, http.MethodGet, "/vnodes", nil, nil, &out)
}

// Console copies a virtual node's console log to w. With follow, it then
// copies what the node writes until ctx ends, the node is removed or the
// server stops; it returns nil then.
func (c *Client) Console(ctx context.Context, name string, follow bool, w io.Writer) error {
	q := url.Values{}
	if follow {
		q.Set("follow", "true")
	}
	p, err := namePath("/vnodes/", name, "/console")
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodGet, p, q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read console of %s: %w", name, err)
	}
	return nil
}
