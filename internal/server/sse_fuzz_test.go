package server

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/walt-testbed/walt/internal/vocab"
)

// The event stream's parameters: whatever the query and Last-Event-ID, an
// answer is either a valid start (after -1 or a sequence number, campaign
// empty or a canonical id) or an error naming one culprit.
func FuzzEventsQuery(f *testing.F) {
	for _, s := range [][3]string{{"", "", ""}, {"12", "", ""}, {"", "3", "7"}, {"-1", "", ""}, {"x", "01", ""},
		{"99999999999999999999", "", ""}, {"", "", "1e3"}, {"0", "18446744073709551615", " 1"}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, after, campaign, lastID string) {
		q := url.Values{}
		if after != "" {
			q.Set("after", after)
		}
		if campaign != "" {
			q.Set("campaign", campaign)
		}
		r := httptest.NewRequest("GET", "/api/v1/events?"+q.Encode(), nil)
		if lastID != "" {
			r.Header["Last-Event-Id"] = []string{lastID}
		}
		a, c, err := eventsQuery(r)
		if err != nil {
			var ce *culpritError
			if !errors.As(err, &ce) || len(ce.names) != 1 || (!errors.Is(err, vocab.ErrInvalid) && !errors.Is(err, vocab.ErrNotFound)) {
				t.Fatalf("eventsQuery(%q, %q, %q): %v, want an invalid or not-found error naming one culprit", after, campaign, lastID, err)
			}
			return
		}
		if a < -1 || (a >= 0 && after == "" && r.Header.Get("Last-Event-ID") == "") {
			t.Fatalf("after %d from %q / %q", a, after, lastID)
		}
		if c != "" {
			if n, err := strconv.ParseUint(c, 10, 63); err != nil || n == 0 || strconv.FormatUint(n, 10) != c {
				t.Fatalf("campaign %q accepted", c)
			}
		}
	})
}
