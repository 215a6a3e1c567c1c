package client

import (
	"context"
	"net/http"

	"github.com/walt-testbed/walt/api"
)

// Rescan reads the LLDP neighbours of the switches of req.Set (default:
// explorable-switches) and records where each device is plugged. Switches
// that could not be scanned are in the result, not an error.
func (c *Client) Rescan(ctx context.Context, req api.RescanRequest) (api.RescanResult, error) {
	var out api.RescanResult
	return out, c.call(ctx, http.MethodPost, "/rescans", nil, req, &out)
}

// Topology returns the switches with the devices recorded on their ports,
// and the nodes whose port is unknown.
func (c *Client) Topology(ctx context.Context) (api.Topology, error) {
	var out api.Topology
	return out, c.call(ctx, http.MethodGet, "/topology", nil, nil, &out)
}

// SwitchPorts reads the ports of a switch and their PoE state over SNMP.
func (c *Client) SwitchPorts(ctx context.Context, switchName string) (api.PortConfig, error) {
	var out api.PortConfig
	p, err := namePath("/switches/", switchName, "/ports")
	if err != nil {
		return out, err
	}
	return out, c.call(ctx, http.MethodGet, p, nil, nil, &out)
}
