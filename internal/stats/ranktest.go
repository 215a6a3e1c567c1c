package stats

import "math"

// ExactLimit is the sample size below which, on both sides and without
// ties, MannWhitney and HodgesLehmann use the exact null distribution of U
// (R's wilcox.test uses the same rule: exact when both samples have fewer
// than 50 values and there are no ties). Otherwise they use the normal
// approximation.
const ExactLimit = 50

// RankTest is the result of the Mann–Whitney U test (the Wilcoxon
// rank-sum test) of "A and B come from one distribution" against "one
// tends to be larger", two-sided.
type RankTest struct {
	// N, M are the numbers of finite values of A and B.
	N, M int
	// U counts the pairs (a, b) with a > b, ties counting ½: R's W of
	// wilcox.test(A, B). U ranges from 0 to N·M, N·M/2 under the null.
	U float64
	// P is the two-sided p-value; 1 when a sample is empty.
	P float64
	// Exact tells whether P comes from the exact distribution of U (no
	// ties, both samples smaller than ExactLimit) or from the normal
	// approximation with tie and continuity corrections.
	Exact bool
}

// MannWhitney tests whether the finite values of a and b come from one
// distribution. O((n+m) log(n+m)); the exact distribution, when used,
// costs O(n·m·(n+m)·min(n,m)) with n, m < ExactLimit (about 10⁷ additions
// at most).
//
// As R: p = min(1, 2·P(U ≤ u)) when u ≤ n·m/2, else min(1, 2·P(U ≥ u)),
// exactly; approximately, z = (u − n·m/2 − ½·sign)/σ with
// σ² = n·m/12·((N+1) − Σ(t³−t)/(N(N−1))) over the tie groups t of the
// N = n+m values, and p = 2·P(Z ≥ |z|).
func MannWhitney(a, b []float64) RankTest {
	return mannWhitneySorted(finiteSorted(a), finiteSorted(b))
}

func mannWhitneySorted(a, b []float64) RankTest {
	n, m := len(a), len(b)
	t := RankTest{N: n, M: m, P: 1}
	if n == 0 || m == 0 {
		return t
	}
	u, ties := rankSum(a, b)
	t.U = u
	nm := float64(n) * float64(m)
	if ties == 0 && n < ExactLimit && m < ExactLimit {
		t.Exact = true
		d := newUDist(n, m)
		// The distribution is symmetric: P(U ≥ u) = P(U ≤ n·m − u).
		t.P = clamp01(2 * d.cdf(int(min(u, nm-u))))
		return t
	}
	sigma := uSigma(n, m, ties)
	if sigma == 0 {
		return t // every value is the same: no evidence either way
	}
	z := u - nm/2
	switch {
	case z > 0:
		z -= 0.5
	case z < 0:
		z += 0.5
	}
	z /= sigma
	t.P = clamp01(2 * normalCDF(-math.Abs(z)))
	return t
}

// rankSum returns U of a (ascending) against b (ascending), and the tie
// term Σ(t³−t) over the groups of equal values of both samples together.
// It merges the two sorted samples: O(n+m).
func rankSum(a, b []float64) (u, ties float64) {
	n, m := len(a), len(b)
	var rankSumA float64
	i, j := 0, 0
	pos := 0 // values before the current group
	for i < n || j < m {
		var v float64
		switch {
		case i == n:
			v = b[j]
		case j == m:
			v = a[i]
		default:
			v = min(a[i], b[j])
		}
		ca, cb := 0, 0
		for i < n && a[i] == v {
			i++
			ca++
		}
		for j < m && b[j] == v {
			j++
			cb++
		}
		g := float64(ca + cb)
		// The group takes ranks pos+1 … pos+g; each gets their mean.
		mid := float64(pos) + (g+1)/2
		rankSumA += float64(ca) * mid
		if g > 1 {
			ties += g*g*g - g
		}
		pos += ca + cb
	}
	u = rankSumA - float64(n)*float64(n+1)/2
	return u, ties
}

// uSigma returns the standard deviation of U under the null, corrected
// for ties.
func uSigma(n, m int, ties float64) float64 {
	nn := float64(n + m)
	v := float64(n) * float64(m) / 12 * ((nn + 1) - ties/(nn*(nn-1)))
	return math.Sqrt(max(v, 0))
}

// uDist is the exact null distribution of U for samples of n and m
// without ties: P(U = u) = c(u)/C(n+m, n).
type uDist struct {
	cum []float64 // cum[u] = P(U ≤ u)
}

// newUDist counts the arrangements giving each U: they are the
// coefficients of the Gaussian binomial coefficient [n+m choose k]_q
// (k = min(n, m)), built row by row with q-Pascal's rule
// [r, j] = [r−1, j−1] + q^j·[r−1, j], additions of positive numbers only
// (no cancellation in floating point). Each [r, j] is updated in place,
// j and then the exponent descending, so the whole costs one allocation
// of about k·(n+m)·max(n,m)/2 numbers.
func newUDist(n, m int) uDist {
	k, size := min(n, m), n+m
	// row[j] holds the coefficients of [r choose j]_q, degree j·(r−j).
	row := make([][]float64, k+1)
	store := make([]float64, 0, (k+1)*(k*(size-k)+1))
	for j := range row {
		c := j*(size-j) + 1
		row[j] = store[len(store) : len(store) : len(store)+c]
		store = store[:len(store)+c]
	}
	row[0] = append(row[0], 1)
	for r := 1; r <= size; r++ {
		for j := min(r, k); j >= 1; j-- {
			prev, cur := row[j-1], row[j] // [r−1, j−1] and [r−1, j]
			old := len(cur)
			cur = cur[:j*(r-j)+1]
			for e := len(cur) - 1; e >= 0; e-- {
				v := 0.0
				if e < len(prev) {
					v = prev[e]
				}
				if e-j >= 0 && e-j < old {
					v += cur[e-j]
				}
				cur[e] = v
			}
			row[j] = cur
		}
	}
	counts := row[k]
	total := 0.0
	for _, c := range counts {
		total += c
	}
	cum := make([]float64, len(counts))
	acc := 0.0
	for u, c := range counts {
		acc += c
		cum[u] = acc / total
	}
	return uDist{cum: cum}
}

// cdf returns P(U ≤ u).
func (d uDist) cdf(u int) float64 {
	switch {
	case u < 0:
		return 0
	case u >= len(d.cum):
		return 1
	}
	return d.cum[u]
}

// quantile returns the smallest u with P(U ≤ u) ≥ p (R's qwilcox).
func (d uDist) quantile(p float64) int {
	for u, c := range d.cum {
		if c >= p*(1-64*epsilon) {
			return u
		}
	}
	return len(d.cum) - 1
}

// epsilon is the relative rounding error of float64.
const epsilon = 0x1p-52
