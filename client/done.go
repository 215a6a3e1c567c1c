package client

import (
	"context"
	"net/http"

	"github.com/walt-testbed/walt/api"
)

// ReportDone tells the server that the experiment of a node's current
// boot is done (walt-node done). A boot that is not the node's current
// one is refused with api.ErrConflict, a node that never reported a boot
// with api.ErrNotFound.
func (c *Client) ReportDone(ctx context.Context, r api.DoneReport) (api.DoneReply, error) {
	var out api.DoneReply
	return out, c.call(ctx, http.MethodPost, "/node-done", nil, r, &out)
}
