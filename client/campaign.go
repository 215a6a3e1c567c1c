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

// StartCampaign starts a campaign and returns it.
func (c *Client) StartCampaign(ctx context.Context, req api.CampaignRequest) (api.Campaign, error) {
	var out api.Campaign
	err := c.call(ctx, http.MethodPost, "/campaigns", nil, req, &out)
	return out, err
}

// Campaigns lists the campaigns, newest first (state empty: all; limit
// 0: the server's default, 100), without their nodes.
func (c *Client) Campaigns(ctx context.Context, state string, limit int) (api.CampaignList, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.CampaignList
	err := c.call(ctx, http.MethodGet, "/campaigns", q, nil, &out)
	return out, err
}

// campaignPath returns the path of campaign id, suffix appended.
func campaignPath(id, suffix string) (string, error) {
	if _, err := strconv.ParseUint(id, 10, 63); err != nil {
		return "", &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf("campaign id %q is not valid: campaign ids are numbers such as 12", id)}
	}
	return "/campaigns/" + id + suffix, nil
}

// Campaign returns one campaign with its nodes.
func (c *Client) Campaign(ctx context.Context, id string) (api.Campaign, error) {
	var out api.Campaign
	p, err := campaignPath(id, "")
	if err == nil {
		err = c.call(ctx, http.MethodGet, p, nil, nil, &out)
	}
	return out, err
}

// StopCampaign stops a running campaign and returns it.
func (c *Client) StopCampaign(ctx context.Context, id string, req api.CampaignStopRequest) (api.Campaign, error) {
	var out api.Campaign
	p, err := campaignPath(id, "/stop")
	if err == nil {
		err = c.call(ctx, http.MethodPost, p, nil, req, &out)
	}
	return out, err
}

// CampaignBoots returns a campaign's rows, by iteration then node.
func (c *Client) CampaignBoots(ctx context.Context, id string) ([]api.CampaignBoot, error) {
	var out api.CampaignBootList
	p, err := campaignPath(id, "/boots")
	if err == nil {
		err = c.call(ctx, http.MethodGet, p, nil, nil, &out)
	}
	return out.Boots, err
}

// CampaignStats returns a campaign's statistics.
func (c *Client) CampaignStats(ctx context.Context, id string) (api.CampaignStats, error) {
	var out api.CampaignStats
	p, err := campaignPath(id, "/stats")
	if err == nil {
		err = c.call(ctx, http.MethodGet, p, nil, nil, &out)
	}
	return out, err
}

// CompareCampaigns compares the boots of campaigns a and b.
func (c *Client) CompareCampaigns(ctx context.Context, a, b string) (api.CampaignComparison, error) {
	var out api.CampaignComparison
	for _, id := range []string{a, b} {
		if _, err := campaignPath(id, ""); err != nil {
			return out, err
		}
	}
	err := c.call(ctx, http.MethodGet, "/campaign-comparisons", url.Values{"a": {a}, "b": {b}}, nil, &out)
	return out, err
}

// FollowCampaign calls fn with the campaign's events: its state, then,
// with follow, each change until the campaign ends (an end event), ctx
// ends or fn fails.
func (c *Client) FollowCampaign(ctx context.Context, id string, follow bool, fn func(api.CampaignEvent) error) error {
	p, err := campaignPath(id, "/events")
	if err != nil {
		return err
	}
	q := url.Values{}
	if follow {
		q.Set("follow", "true")
	}
	resp, err := c.do(ctx, http.MethodGet, p, q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	ended := false
	err = readNDJSON(resp.Body, func(b []byte) (bool, error) {
		var ev api.CampaignEvent
		if err := json.Unmarshal(b, &ev); err != nil {
			return false, fmt.Errorf("decode campaign event: %w", err)
		}
		ended = ev.Type == api.CampaignEventEnd
		return !ended, fn(ev)
	})
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil && follow && !ended {
		return fmt.Errorf("campaign %s: the event stream ended before the campaign (server stopped?)", id)
	}
	return err
}

// ClearQuarantine lifts a node's quarantine.
func (c *Client) ClearQuarantine(ctx context.Context, node, requester string) error {
	p, err := namePath("/quarantine/", node, "")
	if err != nil {
		return err
	}
	q := url.Values{}
	if requester != "" {
		q.Set("requester", requester)
	}
	return c.call(ctx, http.MethodDelete, p, q, nil, nil)
}
