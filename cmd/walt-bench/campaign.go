package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/walt-testbed/walt/api"
)

// benchCampaign runs a campaign of --campaign-rounds rounds on a lab of
// --campaign-nodes nodes booting in --campaign-boot-time, and gives what
// each round costs beyond its slowest node's boot (the time from that
// node's boot report to the next round's reboot requests, read from the
// campaign's rows) and walt-server's CPU time per boot.
func benchCampaign(ctx context.Context, o *options, dir string, octet int, out func(*Figure), logw io.Writer) error {
	co := *o
	co.bootTime = o.campaignBoot
	fmt.Fprintf(logw, "walt-bench: campaign of %d rounds on %d nodes booting in %s (127.%d.0.0/16)\n", o.campaignRounds, o.campaignNodes, o.campaignBoot, octet)
	tb, err := startTestbed(ctx, &co, dir, octet, o.campaignNodes, nil)
	if err != nil {
		return err
	}
	defer tb.stop()
	before, err := tb.quietCPU(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	c, err := tb.c.StartCampaign(ctx, api.CampaignRequest{Set: "all-nodes", Requester: "bench", Force: true, Repeat: o.campaignRounds})
	if err != nil {
		return fmt.Errorf("start the campaign: %w", err)
	}
	if err := tb.c.FollowCampaign(ctx, c.ID, true, func(api.CampaignEvent) error { return nil }); err != nil {
		return fmt.Errorf("follow the campaign: %w (walt-server log:\n%s)", err, tb.server.tail(10))
	}
	wall := time.Since(start)
	after, err := tb.server.cpu()
	if err != nil {
		return err
	}
	boots, err := tb.c.CampaignBoots(ctx, c.ID)
	if err != nil {
		return err
	}
	overheads, completed, failed := roundOverheads(boots)
	if failed > 0 {
		fmt.Fprintf(logw, "walt-bench: campaign: %d iterations failed\n", failed)
	}
	f := figure("campaign").Int("nodes", o.campaignNodes).Int("rounds", o.campaignRounds).Str("boot_time", o.campaignBoot).
		Int("boots", completed).Int("failed", failed).Ms("wall_ms", wall)
	if len(overheads) > 0 {
		f.Ms("round_overhead_p50_ms", percentile(overheads, 0.5)).Ms("round_overhead_p95_ms", percentile(overheads, 0.95)).
			Ms("round_overhead_max_ms", slices.Max(overheads))
	}
	if completed > 0 {
		f.Float("server_cpu_us_per_boot", float64(after-before)/float64(time.Microsecond)/float64(completed), 0)
	}
	out(f)
	return nil
}

// roundOverheads returns, for each round but the last, the time from its
// last boot report to the first reboot request of the next round, and the
// counts of completed and failed rows.
func roundOverheads(boots []api.CampaignBoot) (overheads []time.Duration, completed, failed int) {
	type round struct {
		start, lastBoot time.Time
	}
	rounds := map[int]*round{}
	for _, b := range boots {
		r := rounds[b.Iteration]
		if r == nil {
			r = &round{start: b.Requested}
			rounds[b.Iteration] = r
		}
		if b.Requested.Before(r.start) {
			r.start = b.Requested
		}
		switch b.Outcome {
		case api.BootCompleted:
			completed++
			if b.Booted != nil && b.Booted.After(r.lastBoot) {
				r.lastBoot = *b.Booted
			}
		case api.BootFailed, api.BootDoneTimeout:
			failed++
		}
	}
	its := make([]int, 0, len(rounds))
	for it := range rounds {
		its = append(its, it)
	}
	sort.Ints(its)
	for i := 0; i+1 < len(its); i++ {
		r, next := rounds[its[i]], rounds[its[i+1]]
		if !r.lastBoot.IsZero() {
			overheads = append(overheads, next.start.Sub(r.lastBoot))
		}
	}
	return overheads, completed, failed
}
