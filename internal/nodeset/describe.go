package nodeset

import (
	"sort"
	"strconv"
	"strings"
)

// MaxListed is the most names a sentence lists; above it, it counts them.
const MaxListed = 5

// Describe names a group of devices in a sentence, sorted:
// "node rpi1", "nodes rpi1, rpi2 and rpi3", or "12 nodes" above MaxListed.
// The caller capitalises if the phrase starts a sentence.
func Describe(names []string, singular, plural string) string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	switch n := len(sorted); {
	case n == 0:
		return "no " + plural
	case n == 1:
		return singular + " " + sorted[0]
	case n > MaxListed:
		return strconv.Itoa(n) + " " + plural
	default:
		return plural + " " + strings.Join(sorted[:n-1], ", ") + " and " + sorted[n-1]
	}
}

// Capitalize upper-cases the first letter of s.
func Capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
