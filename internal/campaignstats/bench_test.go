package campaignstats

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/walt-testbed/walt/api"
)

// The benchmark of issue 14: 1000 lab nodes, 100 rounds, boot times of
// 300–800 ms (three models). Run with
//
//	go test -run '^$' -bench . -benchtime 5x ./internal/campaignstats/...
const benchNodes, benchRounds = 1000, 100

func benchCampaign(seed uint64, factor float64) (api.Campaign, []api.CampaignBoot) {
	rng := rand.New(rand.NewPCG(seed, 5))
	c := campaign(fmt.Sprint("bench-", seed), benchNodes, func(i int) string {
		return []string{"rpi-b", "pc-x86", "rpi-4"}[i%3]
	})
	return c, rows(c, benchRounds, func(int) float64 { return factor * (300 + 500*rng.Float64()) })
}

func BenchmarkStats(b *testing.B) {
	c, boots := benchCampaign(1, 1)
	for b.Loop() {
		Stats(c, boots)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(boots)), "ns/boot")
}

func BenchmarkCompare(b *testing.B) {
	a, aBoots := benchCampaign(1, 1)
	c, cBoots := benchCampaign(2, 1.05)
	for b.Loop() {
		Compare(a, aBoots, c, cBoots)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(aBoots)+len(cBoots)), "ns/boot")
}
