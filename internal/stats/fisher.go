package stats

import "math"

// fisherRelErr is the relative tolerance under which a table counts as
// no more likely than the observed one (R's fisher.test uses 1 + 10⁻⁷).
const fisherRelErr = 1 + 1e-7

// FisherExact returns the two-sided p-value of Fisher's exact test of
// independence for the 2×2 table
//
//	a b
//	c d
//
// (for campaigns: failed and not failed boots of A, then of B): the sum of
// the hypergeometric probabilities, given the margins, of the tables no
// more likely than the observed one, as R's fisher.test. Negative counts
// count as 0. Computed in log space (no overflow for any int counts), and
// only over the terms that matter: the distribution is log-concave, so
// the walk out along each tail stops once the rest cannot reach 10⁻¹⁷ of
// the sum; O(√N) steps for N = a+b+c+d.
func FisherExact(a, b, c, d int) float64 {
	a, b, c, d = max(a, 0), max(b, 0), max(c, 0), max(d, 0)
	r1, r2, c1 := a+b, c+d, a+c
	n := r1 + r2
	if n == 0 {
		return 1
	}
	lo, hi := max(0, c1-r2), min(r1, c1)
	// logP(x) = ln P(X = x) for the top-left cell X.
	logP := func(x int) float64 {
		return logChoose(r1, x) + logChoose(r2, c1-x) - logChoose(n, c1)
	}
	thresh := logP(a) + math.Log(fisherRelErr)
	mode := min(max(int(float64(r1+1)*float64(c1+1)/float64(n+2)), lo), hi)
	if logP(mode) <= thresh {
		return 1 // no table is more likely than the observed one
	}
	// The tables more likely than the observed one are an interval
	// [left, right] around the mode; find its ends by bisection.
	left := lo // smallest x ≥ lo with logP(x) > thresh, in [lo, mode]
	for l, r := lo, mode; l < r; {
		mid := l + (r-l)/2
		if logP(mid) > thresh {
			r = mid
		} else {
			l = mid + 1
		}
		left = l
	}
	right := hi // largest x ≤ hi with logP(x) > thresh, in [mode, hi]
	for l, r := mode, hi; l < r; {
		mid := l + (r-l+1)/2
		if logP(mid) > thresh {
			l = mid
		} else {
			r = mid - 1
		}
		right = l
	}
	p := 0.0
	// Left tail: x = left−1 down to lo; P(x−1)/P(x) = x·d'/((b'+1)(c'+1))
	// with the cells of table x: b' = r1−x, c' = c1−x, d' = r2−c1+x.
	if left > lo {
		x := left - 1
		term := math.Exp(logP(x))
		for {
			p += term
			if x == lo {
				break
			}
			ratio := float64(x) * float64(r2-c1+x) / (float64(r1-x+1) * float64(c1-x+1))
			term *= ratio
			x--
			if ratio < 1 && term/(1-ratio) < 1e-17*p {
				p += term / (1 - ratio) // bound of the rest, negligible
				break
			}
		}
	}
	// Right tail: x = right+1 up to hi; P(x+1)/P(x) = b'·c'/((x+1)(d'+1)).
	if right < hi {
		x := right + 1
		term := math.Exp(logP(x))
		for {
			p += term
			if x == hi {
				break
			}
			ratio := float64(r1-x) * float64(c1-x) / (float64(x+1) * float64(r2-c1+x+1))
			term *= ratio
			x++
			if ratio < 1 && term/(1-ratio) < 1e-17*p {
				p += term / (1 - ratio)
				break
			}
		}
	}
	return clamp01(p)
}
