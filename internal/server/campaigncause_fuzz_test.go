package server

import (
	"testing"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/store"
)

// parseCampaignCause takes back exactly what campaignCause writes, and
// nothing else: whatever it accepts, campaignCause writes again the same.
func FuzzParseCampaignCause(f *testing.F) {
	for _, seed := range []string{
		"campaign 3 round 2/10", "campaign 12 iteration 1/1", "campaign 1 round 10000/10000",
		api.CauseBootupTimeout, api.CauseRebootRequested, "campaign", "campaign 3", "campaign 3 round", "campaign  round 1/2",
		"campaign 3 round 0/2", "campaign 3 round 3/2", "campaign 3 round 01/2", "campaign 3 round 1/10001", "campaign 3 lap 1/2",
		"campaign 3 round 1/2 extra", "campaign 3 round +1/2", "campaign 3 round 1/-2",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cause string) {
		id, it, n, ok := parseCampaignCause(cause)
		if !ok {
			if id != "" || it != 0 || n != 0 {
				t.Fatalf("parseCampaignCause(%q) refused it but returned %q, %d, %d", cause, id, it, n)
			}
			return
		}
		if it < 1 || it > n || n > api.MaxCampaignRepeat || id == "" {
			t.Fatalf("parseCampaignCause(%q) = %q, %d/%d: out of bounds", cause, id, it, n)
		}
		rounds := campaignCause(store.Campaign{ID: id, Mode: api.CampaignRounds, Repeat: n}, it)
		free := campaignCause(store.Campaign{ID: id, Mode: api.CampaignFree, Repeat: n}, it)
		if cause != rounds && cause != free {
			t.Fatalf("parseCampaignCause(%q) = %q, %d/%d, which campaignCause writes %q or %q", cause, id, it, n, rounds, free)
		}
	})
}
