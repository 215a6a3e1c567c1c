// Package client is the Go client of walt-server's API. Errors from the
// server come back as *api.Error, so callers test them with errors.Is
// against api.ErrNotFound, api.ErrInvalid, api.ErrNotOwned and friends.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/walt-testbed/walt/api"
)

// DefaultServer is the server URL used when none is given.
const DefaultServer = "http://127.0.0.1:12345"

// Client talks to one walt-server. It is safe for concurrent use.
type Client struct {
	base string
	http *http.Client
	// token is sent as "Authorization: Bearer TOKEN"; never printed.
	token string
}

// New returns a client of the server at baseURL (scheme://host:port).
// httpClient may be nil.
func New(baseURL string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: expected http://HOST:PORT", baseURL)
	}
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	return &Client{base: strings.TrimRight(baseURL, "/") + api.Prefix, http: httpClient}, nil
}

// ErrServerUnreachable wraps failures to reach the server at all.
var ErrServerUnreachable = errors.New("cannot reach walt server")

// do sends a request and returns the response if its status is 2xx; an
// error body is decoded into *api.Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s request: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", api.ContentJSON)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w at %s: %w", ErrServerUnreachable, strings.TrimSuffix(c.base, api.Prefix), err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	var eb api.ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, &eb) != nil || eb.Error == nil || eb.Error.Code == "" {
		return nil, &api.Error{Code: api.CodeInternal, Message: fmt.Sprintf("%s %s: unexpected answer %s: %.200s", method, path, resp.Status, b)}
	}
	return nil, eb.Error
}

// call sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.do(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
	}
	return nil
}

// Nodes lists nodes; filters match first-level fields (booted=true, model=rpi-b, owner=alice).
func (c *Client) Nodes(ctx context.Context, filters map[string]string) (api.NodeList, error) {
	q := url.Values{}
	for k, v := range filters {
		q.Set(k, v)
	}
	var out api.NodeList
	return out, c.call(ctx, http.MethodGet, "/nodes", q, nil, &out)
}

// Devices lists every device.
func (c *Client) Devices(ctx context.Context) (api.DeviceList, error) {
	var out api.DeviceList
	return out, c.call(ctx, http.MethodGet, "/devices", nil, nil, &out)
}

// AddDevice adds a device to the inventory.
func (c *Client) AddDevice(ctx context.Context, d api.AddDevice) (api.Device, error) {
	var out api.Device
	return out, c.call(ctx, http.MethodPost, "/devices", nil, d, &out)
}

// ForgetDevice removes a device and everything attached to it. Without
// force, a node owned by another user is refused with api.ErrNotOwned; a
// virtual node is refused with api.ErrInvalid (RemoveVNode removes it).
func (c *Client) ForgetDevice(ctx context.Context, name, requester string, force bool) error {
	p, err := namePath("/devices/", name, "")
	if err != nil {
		return err
	}
	q := url.Values{"requester": {requester}}
	if force {
		q.Set("force", "true")
	}
	return c.call(ctx, http.MethodDelete, p, q, nil, nil)
}

// namePath returns prefix+name+suffix with name escaped as one path
// segment. "", "." and ".." cannot be one (HTTP path cleaning would
// remove them): they are refused here, as the server refuses such names.
func namePath(prefix, name, suffix string) (string, error) {
	if name == "" || name == "." || name == ".." {
		return "", &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf("device name %q is not valid", name)}
	}
	return prefix + url.PathEscape(name) + suffix, nil
}

// ReportNode tells the server about a node (done by the node's agent at
// start-up). Reporting again with the same MAC updates the node.
func (c *Client) ReportNode(ctx context.Context, r api.NodeReport) (api.Node, error) {
	var out api.Node
	return out, c.call(ctx, http.MethodPost, "/node-reports", nil, r, &out)
}

// Config shows the configuration of a set's devices.
func (c *Client) Config(ctx context.Context, set, requester string, nodesOnly bool) (api.ConfigResult, error) {
	q := url.Values{"set": {set}, "requester": {requester}}
	if nodesOnly {
		q.Set("nodes_only", "true")
	}
	var out api.ConfigResult
	return out, c.call(ctx, http.MethodGet, "/config", q, nil, &out)
}

// SetConfig validates and applies settings ("name=value") to a set's
// devices, all or none.
func (c *Client) SetConfig(ctx context.Context, req api.ConfigRequest) (api.ConfigResult, error) {
	var out api.ConfigResult
	return out, c.call(ctx, http.MethodPost, "/config", nil, req, &out)
}

// Ownership acquires or releases nodes.
func (c *Client) Ownership(ctx context.Context, req api.OwnershipRequest) (api.OwnershipResult, error) {
	var out api.OwnershipResult
	return out, c.call(ctx, http.MethodPost, "/ownership", nil, req, &out)
}

// SetLink records which switch port a node is plugged into.
func (c *Client) SetLink(ctx context.Context, l api.Link) error {
	return c.call(ctx, http.MethodPut, "/links", nil, l, nil)
}

// Reboots returns the reboot history, newest first.
func (c *Client) Reboots(ctx context.Context, node string, limit int) (api.RebootList, error) {
	q := url.Values{}
	if node != "" {
		q.Set("node", node)
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	var out api.RebootList
	return out, c.call(ctx, http.MethodGet, "/reboots", q, nil, &out)
}

// Reboot reboots a set of nodes. progress, if not nil, is called with each
// event of the stream as it arrives (start, one per node, done). Reboot
// returns the per-node results, in the order they finished, and an error
// if the request failed as a whole (bad set, nodes owned by others, lost
// connection); per-node failures are in the results.
func (c *Client) Reboot(ctx context.Context, req api.RebootRequest, progress func(api.RebootEvent)) ([]api.NodeResult, error) {
	resp, err := c.do(ctx, http.MethodPost, "/reboots", nil, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var results []api.NodeResult
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev api.RebootEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return results, fmt.Errorf("decode reboot progress: %w", err)
		}
		if progress != nil {
			progress(ev)
		}
		switch ev.Type {
		case api.EventNode:
			if ev.Node != nil {
				results = append(results, *ev.Node)
			}
		case api.EventError:
			return results, ev.Error
		case api.EventDone:
			return results, nil
		}
	}
	if err := sc.Err(); err != nil {
		return results, fmt.Errorf("read reboot progress: %w", err)
	}
	return results, fmt.Errorf("reboot progress stream ended early after %d results", len(results))
}
