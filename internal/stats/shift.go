package stats

import "math"

// MaxShiftSample bounds the values of each side that HodgesLehmann uses.
// A larger sample is replaced by MaxShiftSample of its order statistics,
// evenly spaced (its type-7 quantiles at i/(MaxShiftSample−1)): the
// estimate barely moves and the interval, computed for the smaller
// sample, is a little wider (conservative). This keeps the work of a
// comparison of two whole campaigns (10⁷ boots each) near a second.
const MaxShiftSample = 100000

// Shift is the Hodges–Lehmann estimate of the location shift from A to B:
// the median of the n·m differences b − a, with a confidence interval.
type Shift struct {
	// Estimate is the median of the differences b − a; 0 when a sample
	// is empty.
	Estimate float64
	// CI is a Level confidence interval of the shift: the order
	// statistics d(k) and d(n·m−k+1) of the differences, with k from the
	// null distribution of U (exact as in MannWhitney, else its normal
	// approximation, k = ⌊n·m/2 − z₀.₉₇₅·σ⌋ with σ as in MannWhitney).
	// Nil when the samples are too small for Level coverage (exactly:
	// C(n+m, n) < 40, e.g. 3 and 3 values).
	CI *[2]float64
	// Thinned is true when a side had more than MaxShiftSample values.
	Thinned bool
}

// HodgesLehmann estimates how much larger the values of b are than those
// of a (finite values only), assuming both distributions have the same
// shape. Work: O((n+m) log(n+m)) to sort, then O((n+m)·64) per order
// statistic of the differences, which are never built.
func HodgesLehmann(a, b []float64) Shift {
	return hodgesLehmannSorted(finiteSorted(a), finiteSorted(b))
}

func hodgesLehmannSorted(a, b []float64) Shift {
	var s Shift
	if len(a) > MaxShiftSample {
		a, s.Thinned = thin(a, MaxShiftSample), true
	}
	if len(b) > MaxShiftSample {
		b, s.Thinned = thin(b, MaxShiftSample), true
	}
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return s
	}
	nm := n * m
	d := diffs{a: a, b: b}
	if nm%2 == 1 {
		s.Estimate = d.kth(nm/2 + 1)
	} else {
		lo, hi := d.kth(nm/2), d.kth(nm/2+1)
		s.Estimate = lo + (hi-lo)/2
	}
	if k := shiftCIRank(a, b); k > 0 {
		s.CI = &[2]float64{d.kth(k), d.kth(nm - k + 1)}
	}
	return s
}

// shiftCIRank returns the k of Shift.CI, or 0 when there is no interval.
func shiftCIRank(a, b []float64) int {
	n, m := len(a), len(b)
	nm := n * m
	_, ties := rankSum(a, b)
	if ties == 0 && n < ExactLimit && m < ExactLimit {
		dist := newUDist(n, m)
		// P(U ≤ 0) = 1/C(n+m, n): too large for any Level interval.
		if 2*dist.cdf(0) > 1-Level {
			return 0
		}
		// R's qwilcox(0.025, n, m): P(U ≤ k−1) < 0.025 ≤ P(U ≤ k).
		k := dist.quantile((1 - Level) / 2)
		if k == 0 {
			k = 1
		}
		return k
	}
	sigma := uSigma(n, m, ties)
	k := int(math.Floor(float64(nm)/2 - z975*sigma))
	if k < 1 {
		return 0
	}
	return k
}

// thin returns k evenly spaced order statistics of an ascending sample.
func thin(s []float64, k int) []float64 {
	out := make([]float64, k)
	for i := range out {
		out[i] = Quantile(s, float64(i)/float64(k-1))
	}
	return out
}

// diffs stands for the n·m differences b[j] − a[i] of two ascending
// samples, without building them.
type diffs struct{ a, b []float64 }

// countAtMost returns the number of differences ≤ t. For each a[i]
// (ascending) the differences b[j] − a[i] ≤ t form a prefix of b that can
// only grow as a[i] grows (rounding is monotone), so one pointer walks b
// forwards: O(n+m).
func (d diffs) countAtMost(t float64) int {
	count := 0
	j := 0 // b[:j] − a[i] ≤ t
	for _, ai := range d.a {
		for j < len(d.b) && d.b[j]-ai <= t {
			j++
		}
		count += j
	}
	return count
}

// kth returns the k-th smallest difference (1 ≤ k ≤ n·m), exactly. It
// narrows a window (lo, hi] holding the answer, count(≤ lo) < k ≤
// count(≤ hi), halving it by value (or, where values cannot be halved, by
// the order of float64 values: at most 64 such steps), until at most
// n+m differences fall inside; those are then gathered and the answer
// selected among them. Each step costs one countAtMost, O(n+m); with
// smooth data the window's count halves each step, so about
// log₂(n·m/(n+m)) steps.
func (d diffs) kth(k int) float64 {
	n, m := len(d.a), len(d.b)
	hi := d.b[m-1] - d.a[0]
	lo := math.Nextafter(d.b[0]-d.a[n-1], math.Inf(-1))
	cLo, cHi := 0, n*m
	for cHi-cLo > n+m {
		mid := lo + (hi-lo)/2
		if !(lo < mid && mid < hi) {
			// Too close for a value midpoint: bisect the float order.
			kl, kh := orderKey(lo), orderKey(hi)
			if kh-kl < 2 {
				return hi // the only value left in the window
			}
			mid = fromKey(kl + (kh-kl)/2)
		}
		if c := d.countAtMost(mid); c >= k {
			hi, cHi = mid, c
		} else {
			lo, cLo = mid, c
		}
	}
	return d.selectIn(lo, hi, k-cLo, cHi-cLo)
}

// selectIn returns the r-th smallest (1-based) of the about count
// differences in (lo, hi], gathered with two pointers walking b: for
// a[i] ascending, the b[j] with lo < b[j] − a[i] ≤ hi start and end ever
// later.
func (d diffs) selectIn(lo, hi float64, r, count int) float64 {
	window := make([]float64, 0, count)
	start, end := 0, 0
	for _, ai := range d.a {
		for start < len(d.b) && d.b[start]-ai <= lo {
			start++
		}
		for end < len(d.b) && d.b[end]-ai <= hi {
			end++
		}
		for j := start; j < end; j++ {
			window = append(window, d.b[j]-ai)
		}
	}
	return quickselect(window, r-1)
}

// quickselect returns the i-th smallest (0-based) of x, reordering x.
// Pivots are medians of three, and equal values are split evenly between
// the two sides, so repeated values do not make it quadratic.
func quickselect(x []float64, i int) float64 {
	lo, hi := 0, len(x)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		// Median of three to x[mid].
		if x[mid] < x[lo] {
			x[mid], x[lo] = x[lo], x[mid]
		}
		if x[hi] < x[lo] {
			x[hi], x[lo] = x[lo], x[hi]
		}
		if x[hi] < x[mid] {
			x[hi], x[mid] = x[mid], x[hi]
		}
		pivot := x[mid]
		l, r := lo, hi
		for l <= r { // Hoare partition
			for x[l] < pivot {
				l++
			}
			for x[r] > pivot {
				r--
			}
			if l <= r {
				x[l], x[r] = x[r], x[l]
				l++
				r--
			}
		}
		switch {
		case i <= r:
			hi = r
		case i >= l:
			lo = l
		default:
			return x[i] // between r and l: equal to the pivot
		}
	}
	return x[i]
}

// orderKey maps a float64 to a uint64 whose order is that of the floats
// (−0 just below +0; no NaNs here).
func orderKey(f float64) uint64 {
	u := math.Float64bits(f)
	if u>>63 == 1 {
		return ^u
	}
	return u | 1<<63
}

// fromKey inverts orderKey.
func fromKey(u uint64) float64 {
	if u>>63 == 1 {
		return math.Float64frombits(u &^ (1 << 63))
	}
	return math.Float64frombits(^u)
}

// Median returns the median of the finite values of x (0 when there are
// none).
func Median(x []float64) float64 {
	return Quantile(finiteSorted(x), 0.5)
}
