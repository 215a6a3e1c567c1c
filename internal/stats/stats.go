// Package stats holds the numeric code behind campaign statistics: sample
// summaries with a distribution-free confidence interval for the median,
// the Mann–Whitney U test, the Hodges–Lehmann shift estimate with its
// confidence interval, and Fisher's exact test for 2×2 tables.
//
// Every function takes plain []float64 samples, ignores values that are
// not finite (NaN, ±Inf) or beyond ±MaxValue, never modifies its arguments and never returns a
// NaN or an infinity, so results always encode as JSON. Work is bounded:
// Summarize and MannWhitney sort a copy (O(n log n)); HodgesLehmann never
// builds the n·m pairwise differences (O((n+m)·64) per order statistic
// after sorting); FisherExact sums only the terms of the hypergeometric
// distribution that matter (O(√N) of them).
//
// The definitions follow R's, so that results can be checked against R:
// quantiles are R's default (type 7), the Mann–Whitney U of A against B is
// R's W statistic of wilcox.test(A, B), and Fisher's two-sided p-value sums
// the probabilities of the tables no more likely than the observed one, as
// fisher.test does.
package stats

import (
	"math"
	"slices"

	"github.com/walt-testbed/walt/api"
)

// Level is the confidence level of every interval here, and 1 − Level the
// significance level of the tests' "changed" decisions.
const Level = 0.95

// z975 is the 0.975 quantile of the standard normal distribution.
const z975 = 1.959963984540054

// MaxValue bounds the magnitude of the values the functions use: larger
// ones, like NaNs and infinities, are ignored, so that no sum, square or
// difference overflows.
const MaxValue = 1e150

// finiteSorted returns a sorted copy of the values of x within ±MaxValue.
func finiteSorted(x []float64) []float64 {
	s := make([]float64, 0, len(x))
	for _, v := range x {
		if math.Abs(v) <= MaxValue { // false for NaN
			s = append(s, v)
		}
	}
	slices.Sort(s)
	return s
}

// Quantile returns the p-quantile (0 ≤ p ≤ 1) of an ascending sample, by
// R's default definition (type 7): with h = (n−1)·p, the linear
// interpolation between the order statistics x[⌊h⌋] and x[⌊h⌋+1]
// (0-based). quantile(1:10, 0.95) is 9.55 in R and here. An empty sample
// gives 0.
func Quantile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	p = min(max(p, 0), 1)
	h := float64(n-1) * p
	lo := int(math.Floor(h))
	if lo >= n-1 {
		return sorted[n-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// Summarize describes the finite values of x: their number, minimum,
// median and 95th percentile (Quantile, type 7), maximum, mean, sample
// standard deviation (n−1 denominator; 0 for fewer than two values) and
// MedianCI. O(n log n).
func Summarize(x []float64) api.Summary {
	return summarizeSorted(finiteSorted(x))
}

func summarizeSorted(s []float64) api.Summary {
	n := len(s)
	if n == 0 {
		return api.Summary{}
	}
	// Welford's update keeps the variance accurate when the values are
	// large and close together.
	var mean, m2 float64
	for i, v := range s {
		d := v - mean
		mean += d / float64(i+1)
		m2 += d * (v - mean)
	}
	sd := 0.0
	if n > 1 {
		sd = math.Sqrt(max(m2, 0) / float64(n-1))
	}
	sum := api.Summary{
		N:      n,
		Min:    s[0],
		Median: Quantile(s, 0.5),
		P95:    Quantile(s, 0.95),
		Max:    s[n-1],
		Mean:   mean,
		SD:     sd,
	}
	if lo, hi, ok := MedianCI(s); ok {
		sum.MedianCI = &[2]float64{lo, hi}
	}
	return sum
}

// MedianCI returns a distribution-free confidence interval of at least
// Level coverage for the median of the population an ascending sample
// comes from: [x(k), x(n−k+1)] (1-based order statistics) with k the
// largest integer such that P(B ≤ k−1) ≤ 0.025 for B ~ Binomial(n, ½).
// The coverage is 1 − 2·P(B ≤ k−1). ok is false when n < 6, too few for
// any such interval (n = 5 covers only 93.75 %).
func MedianCI(sorted []float64) (lo, hi float64, ok bool) {
	n := len(sorted)
	k := medianCIRank(n)
	if k == 0 {
		return 0, 0, false
	}
	return sorted[k-1], sorted[n-k], true
}

// medianCIRank returns the k of MedianCI for a sample of n, or 0.
func medianCIRank(n int) int {
	if n < 6 {
		return 0
	}
	// Sum the Binomial(n, ½) probabilities from far below the mean, where
	// the terms are negligible (beyond 12 standard deviations: < 1e-32),
	// so the work is O(√n) rather than O(n).
	sd := math.Sqrt(float64(n)) / 2
	start := max(0, int(math.Floor(float64(n)/2-12*sd)))
	logTerm := logChoose(n, start) - float64(n)*math.Ln2
	cdf := 0.0
	for i := start; i <= n; i++ {
		cdf += math.Exp(logTerm)
		if cdf > 0.025 {
			// P(B ≤ i) > 0.025, P(B ≤ i−1) ≤ 0.025: k−1 = i−1.
			return i
		}
		logTerm += math.Log(float64(n-i)) - math.Log(float64(i+1))
	}
	return 0 // not reached for n ≥ 6
}

// logChoose returns ln C(n, k) for 0 ≤ k ≤ n.
func logChoose(n, k int) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

// normalCDF returns P(Z ≤ z) for a standard normal Z.
func normalCDF(z float64) float64 {
	return 0.5 * math.Erfc(-z/math.Sqrt2)
}

// clamp01 bounds a probability that rounding may have pushed out of [0, 1].
func clamp01(p float64) float64 {
	if math.IsNaN(p) {
		return 1
	}
	return min(max(p, 0), 1)
}

// Sample is a sorted copy of a sample's usable values (within
// ±MaxValue), for callers that need several figures of one sample
// without sorting it again for each.
type Sample struct{ sorted []float64 }

// NewSample sorts a copy of the values of x within ±MaxValue.
func NewSample(x []float64) Sample { return Sample{finiteSorted(x)} }

// Len returns the number of values of s.
func (s Sample) Len() int { return len(s.sorted) }

// Summary is Summarize of the sample.
func (s Sample) Summary() api.Summary { return summarizeSorted(s.sorted) }

// Quantile is Quantile of the sample.
func (s Sample) Quantile(p float64) float64 { return Quantile(s.sorted, p) }

// RankTest is MannWhitney(s, b).
func (s Sample) RankTest(b Sample) RankTest { return mannWhitneySorted(s.sorted, b.sorted) }

// ShiftTo is HodgesLehmann(s, b): the shift from s to b.
func (s Sample) ShiftTo(b Sample) Shift { return hodgesLehmannSorted(s.sorted, b.sorted) }
