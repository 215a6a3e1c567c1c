package stats

import (
	"encoding/json"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
)

func near(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol
}

func seq(from, to float64) []float64 {
	var s []float64
	for v := from; v <= to; v++ {
		s = append(s, v)
	}
	return s
}

// TestQuantileR checks R's type-7 quantiles:
// quantile(1:10, c(0, .25, .5, .75, .95, 1)) prints
// 1.00 3.25 5.50 7.75 9.55 10.00.
func TestQuantileR(t *testing.T) {
	t.Parallel()
	x := seq(1, 10)
	for _, tc := range []struct{ p, want float64 }{
		{0, 1}, {0.25, 3.25}, {0.5, 5.5}, {0.75, 7.75}, {0.95, 9.55}, {1, 10},
	} {
		if got := Quantile(x, tc.p); !near(got, tc.want, 1e-12) {
			t.Errorf("Quantile(1:10, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	// quantile(c(1, 3, 7, 15), 0.9): h = 2.7, 7 + 0.7·8 = 12.6.
	if got := Quantile([]float64{1, 3, 7, 15}, 0.9); !near(got, 12.6, 1e-12) {
		t.Errorf("Quantile(1,3,7,15; 0.9) = %v, want 12.6", got)
	}
}

// TestSummarizeR: summary(1:10), sd(1:10) = 3.02765 (√(55/6)), mean 5.5.
func TestSummarizeR(t *testing.T) {
	t.Parallel()
	x := seq(1, 10)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(x), func(i, j int) { x[i], x[j] = x[j], x[i] })
	orig := slices.Clone(x)
	s := Summarize(append(x, math.NaN(), math.Inf(1)))
	if s.N != 10 || s.Min != 1 || s.Max != 10 || s.Median != 5.5 || !near(s.P95, 9.55, 1e-12) ||
		s.Mean != 5.5 || !near(s.SD, math.Sqrt(55.0/6), 1e-12) {
		t.Errorf("Summarize(1:10) = %+v", s)
	}
	// n = 10: P(B ≤ 1) = 11/1024 ≤ 0.025 < P(B ≤ 2) = 56/1024, so the
	// interval is [x(2), x(9)] (Conover's table of order statistics).
	if s.MedianCI == nil || *s.MedianCI != [2]float64{2, 9} {
		t.Errorf("Summarize(1:10).MedianCI = %v, want [2 9]", s.MedianCI)
	}
	if !slices.Equal(x[:10], orig) {
		t.Errorf("Summarize changed its argument")
	}
	if s := Summarize(nil); s.N != 0 || s.MedianCI != nil {
		t.Errorf("Summarize(nil) = %+v", s)
	}
	if s := Summarize([]float64{4}); s.N != 1 || s.SD != 0 || s.Median != 4 || s.P95 != 4 {
		t.Errorf("Summarize([4]) = %+v", s)
	}
	// Large, close values: the naive Σx² − n·mean² formula loses them.
	big := []float64{1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16}
	if s := Summarize(big); !near(s.SD, math.Sqrt(30), 1e-6) {
		t.Errorf("Summarize(1e9+{4,7,13,16}).SD = %v, want √30", s.SD)
	}
}

// binomialRank computes the rank of the median interval the slow way:
// exact rationals, P(B ≤ k−1) ≤ 1/40 for the largest k.
func binomialRank(n int) int {
	limit := big.NewRat(1, 40)
	total := new(big.Int).Lsh(big.NewInt(1), uint(n))
	cum := new(big.Int)
	k := 0
	for i := 0; i <= n; i++ {
		cum.Add(cum, new(big.Int).Binomial(int64(n), int64(i)))
		if new(big.Rat).SetFrac(cum, total).Cmp(limit) > 0 {
			return k
		}
		k = i + 1
	}
	return k
}

func TestMedianCIRank(t *testing.T) {
	t.Parallel()
	// Published ranks (Conover, Practical Nonparametric Statistics; also
	// binom.test-derived tables): n = 6 → 1, 10 → 2, 20 → 6, 100 → 40.
	for n, want := range map[int]int{5: 0, 6: 1, 10: 2, 20: 6, 100: 40} {
		if got := medianCIRank(n); got != want {
			t.Errorf("medianCIRank(%d) = %d, want %d", n, got, want)
		}
	}
	for n := 1; n <= 300; n++ {
		if got, want := medianCIRank(n), binomialRank(n); got != want {
			t.Errorf("medianCIRank(%d) = %d, exact rationals give %d", n, got, want)
		}
	}
	// Large n: the normal approximation n/2 − 0.98·√n is within a rank.
	for _, n := range []int{10000, 1000000, 10000000} {
		got := medianCIRank(n)
		approx := float64(n)/2 - z975*math.Sqrt(float64(n))/2
		if math.Abs(float64(got)-approx) > 2 {
			t.Errorf("medianCIRank(%d) = %d, normal approximation %.1f", n, got, approx)
		}
	}
}

// bruteU counts, over every way of choosing which n of n+m distinct ranks
// belong to A, the arrangements giving each U (pairs a > b).
func bruteU(n, m int) []int {
	counts := make([]int, n*m+1)
	var rec func(pos, left, u, bSeen int)
	rec = func(pos, left, u, bSeen int) {
		if pos == n+m {
			if left == 0 {
				counts[u]++
			}
			return
		}
		if left > 0 { // A takes this rank: above every B so far
			rec(pos+1, left-1, u+bSeen, bSeen)
		}
		if n+m-pos > left {
			rec(pos+1, left, u, bSeen+1)
		}
	}
	rec(0, n, 0, 0)
	return counts
}

func TestUDistBrute(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 8; n++ {
		for m := 1; m <= 8; m++ {
			counts := bruteU(n, m)
			total := 0
			for _, c := range counts {
				total += c
			}
			d := newUDist(n, m)
			cum := 0
			for u, c := range counts {
				cum += c
				if got, want := d.cdf(u), float64(cum)/float64(total); !near(got, want, 1e-12) {
					t.Fatalf("newUDist(%d, %d).cdf(%d) = %v, enumeration gives %v", n, m, u, got, want)
				}
			}
		}
	}
}

// TestMannWhitneyR: the example of R's ?wilcox.test (Hollander & Wolfe,
// p. 110): wilcox.test(x, y, alternative = "g") prints W = 35,
// p-value = 0.1272; the two-sided p is twice that.
func TestMannWhitneyR(t *testing.T) {
	t.Parallel()
	x := []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}
	y := []float64{1.15, 0.88, 0.90, 0.74, 1.21}
	r := MannWhitney(x, y)
	if r.U != 35 || !r.Exact || !near(r.P, 2*0.1272, 1e-4) {
		t.Errorf("MannWhitney(H&W x, y) = %+v, want U 35, exact, P 0.2544", r)
	}
	// By enumeration: P(U ≥ 35) for n = 10, m = 5.
	counts := bruteU(10, 5)
	ge, total := 0, 0
	for u, c := range counts {
		total += c
		if u >= 35 {
			ge += c
		}
	}
	if want := 2 * float64(ge) / float64(total); !near(r.P, want, 1e-12) {
		t.Errorf("MannWhitney(H&W x, y).P = %v, enumeration gives %v", r.P, want)
	}
	if s := MannWhitney(y, x); s.U != 50-35 || s.P != r.P {
		t.Errorf("MannWhitney(y, x) = %+v, want U 15 and the same P", s)
	}
}

// TestMannWhitneyTiesR: R's ?wilcox.test, "Ozone ~ Month, subset = Month
// %in% c(5, 8)" with the airquality data (ties, so the normal
// approximation with continuity correction): W = 127.5,
// p-value = 0.0001208.
func TestMannWhitneyTiesR(t *testing.T) {
	t.Parallel()
	may := []float64{41, 36, 12, 18, 28, 23, 19, 8, 7, 16, 11, 14, 18, 14, 34, 6,
		30, 11, 1, 11, 4, 32, 23, 45, 115, 37}
	aug := []float64{39, 9, 16, 78, 35, 66, 122, 89, 110, 44, 28, 65, 22, 59, 23,
		31, 44, 21, 9, 45, 168, 73, 76, 118, 84, 85}
	r := MannWhitney(may, aug)
	if r.U != 127.5 || r.Exact || !near(r.P, 0.0001208, 5e-8) {
		t.Errorf("MannWhitney(Ozone May, August) = %+v, want W 127.5, P 0.0001208", r)
	}
}

func TestMannWhitneyEdges(t *testing.T) {
	t.Parallel()
	if r := MannWhitney(nil, []float64{1}); r.P != 1 {
		t.Errorf("MannWhitney(empty, 1) = %+v, want P 1", r)
	}
	if r := MannWhitney([]float64{2, 2, 2}, []float64{2, 2}); r.P != 1 || r.U != 3 {
		t.Errorf("MannWhitney(all equal) = %+v, want U 3, P 1", r)
	}
	// Complete separation, 49 against 49 (the largest exact case):
	// P = 2/C(98, 49).
	a, b := seq(1, 49), seq(100, 148)
	r := MannWhitney(a, b)
	c, _ := new(big.Float).SetInt(new(big.Int).Binomial(98, 49)).Float64()
	want := 2 / c
	if !r.Exact || r.U != 0 || math.Abs(r.P-want)/want > 1e-9 {
		t.Errorf("MannWhitney(1:49, 100:148) = %+v, want exact P %v", r, want)
	}
}

// bruteShift returns the median and the k-th order statistics of the
// pairwise differences b − a, built and sorted.
func bruteDiffs(a, b []float64) []float64 {
	var d []float64
	for _, x := range a {
		for _, y := range b {
			d = append(d, y-x)
		}
	}
	slices.Sort(d)
	return d
}

func TestHodgesLehmannBrute(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		n, m := 1+rng.IntN(12), 1+rng.IntN(12)
		if trial%3 == 0 {
			n, m = 40+rng.IntN(30), 40+rng.IntN(30) // normal approximation
		}
		// Steps of 0.1 make ties happen; every fifth trial, large samples of
		// only a few distinct values exercise kth's narrowing and its
		// selection among many equal differences.
		step, spread := 10.0, 10.0
		if trial%5 == 1 {
			n, m, step, spread = 100+rng.IntN(200), 100+rng.IntN(200), 1, 1.5
		}
		a, b := make([]float64, n), make([]float64, m)
		for i := range a {
			a[i] = math.Round(rng.NormFloat64()*spread*step) / step
		}
		for i := range b {
			b[i] = math.Round(rng.NormFloat64()*spread*step)/step + 3
		}
		d := bruteDiffs(a, b)
		want := d[len(d)/2]
		if len(d)%2 == 0 {
			want = (d[len(d)/2-1] + d[len(d)/2]) / 2
		}
		s := HodgesLehmann(a, b)
		if !near(s.Estimate, want, 1e-12) {
			t.Fatalf("HodgesLehmann(%v, %v).Estimate = %v, sorted differences give %v", a, b, s.Estimate, want)
		}
		// The interval: indices from the U distribution, computed here by
		// enumeration when exact, by the formula otherwise.
		_, ties := rankSum(finiteSorted(a), finiteSorted(b))
		k := 0
		if ties == 0 && n <= 8 && m <= 8 {
			counts := bruteU(n, m)
			total, cum := 0, 0
			for _, c := range counts {
				total += c
			}
			if 2*float64(counts[0])/float64(total) <= 0.05 {
				for u, c := range counts {
					cum += c
					if float64(cum)/float64(total) >= 0.025 {
						k = max(u, 1)
						break
					}
				}
			}
		} else if ties != 0 || n >= ExactLimit || m >= ExactLimit {
			nn := float64(n + m)
			sigma := math.Sqrt(float64(n*m) / 12 * (nn + 1 - ties/(nn*(nn-1))))
			k = max(int(math.Floor(float64(n*m)/2-1.959964*sigma)), 0)
		} else {
			continue
		}
		switch {
		case k == 0 && s.CI != nil:
			t.Fatalf("HodgesLehmann(n %d, m %d).CI = %v, want none", n, m, *s.CI)
		case k > 0 && (s.CI == nil || *s.CI != [2]float64{d[k-1], d[len(d)-k]}):
			t.Fatalf("HodgesLehmann(n %d, m %d).CI = %v, want [%v %v] (k %d)", n, m, s.CI, d[k-1], d[len(d)-k], k)
		}
	}
}

// TestHodgesLehmannR: for the ?wilcox.test example data, R's
// wilcox.test(y, x, conf.int = TRUE) takes, in this exact case, the
// median of the 50 differences y − x as the difference in location;
// worked out by hand (sorted differences 25 and 26: −0.31 and −0.30),
// −0.305.
func TestHodgesLehmannR(t *testing.T) {
	t.Parallel()
	x := []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}
	y := []float64{1.15, 0.88, 0.90, 0.74, 1.21}
	s := HodgesLehmann(x, y) // y − x
	if !near(s.Estimate, -0.305, 1e-12) {
		t.Errorf("HodgesLehmann(x, y).Estimate = %v, want -0.305", s.Estimate)
	}
	if s.CI == nil || s.CI[0] > s.Estimate || s.CI[1] < s.Estimate {
		t.Errorf("HodgesLehmann(x, y).CI = %v, want one around the estimate", s.CI)
	}
}

func TestShiftProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for range 50 {
		n, m := 5+rng.IntN(200), 5+rng.IntN(200)
		a := make([]float64, n)
		for i := range a {
			a[i] = math.Exp(rng.NormFloat64()*0.3 - 0.7)
		}
		// b is a shifted by exactly 0.25 (dyadic, so b − a is exact
		// where a's exponent allows).
		b := make([]float64, m)
		for i := range b {
			b[i] = a[rng.IntN(n)] + 0.25
		}
		s := HodgesLehmann(a, a2(a, 0.25))
		if !near(s.Estimate, 0.25, 1e-12) || s.CI == nil || s.CI[0] > 0.25 || s.CI[1] < 0.25 {
			t.Fatalf("HodgesLehmann(a, a+0.25) = %v %v, want 0.25 inside its CI", s.Estimate, s.CI)
		}
		ab, ba := HodgesLehmann(a, b), HodgesLehmann(b, a)
		if !near(ab.Estimate, -ba.Estimate, 1e-12) {
			t.Fatalf("HodgesLehmann(a, b) = %v but (b, a) = %v, want opposites", ab.Estimate, ba.Estimate)
		}
		r1, r2 := MannWhitney(a, b), MannWhitney(b, a)
		if r1.P != r2.P || r1.U+r2.U != float64(n*m) || r1.P < 0 || r1.P > 1 {
			t.Fatalf("MannWhitney(a, b) = %+v, (b, a) = %+v", r1, r2)
		}
	}
}

func a2(a []float64, c float64) []float64 {
	out := make([]float64, len(a))
	for i, v := range a {
		out[i] = v + c
	}
	return out
}

// TestHodgesLehmannAllEqual: 10¹⁰ equal differences are not gathered.
func TestHodgesLehmannAllEqual(t *testing.T) {
	t.Parallel()
	a, b := make([]float64, MaxShiftSample), make([]float64, MaxShiftSample)
	for i := range a {
		a[i], b[i] = 0.5, 0.75
	}
	s := HodgesLehmann(a, b)
	if s.Estimate != 0.25 || s.CI == nil || *s.CI != [2]float64{0.25, 0.25} {
		t.Errorf("HodgesLehmann(0.5s, 0.75s) = %v %v, want 0.25 [0.25 0.25]", s.Estimate, s.CI)
	}
}

func TestHodgesLehmannThinned(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 8))
	a := make([]float64, MaxShiftSample+1000)
	b := make([]float64, MaxShiftSample+5000)
	for i := range a {
		a[i] = 0.3 + 0.5*rng.Float64()
	}
	for i := range b {
		b[i] = 0.4 + 0.5*rng.Float64()
	}
	s := HodgesLehmann(a, b)
	if !s.Thinned || !near(s.Estimate, 0.1, 0.005) || s.CI == nil || s.CI[0] > 0.1 || s.CI[1] < 0.1 {
		t.Errorf("HodgesLehmann(U(.3,.8), U(.4,.9)) = %+v %v, want ≈ 0.1, thinned", s, s.CI)
	}
}

// bruteFisher sums, in exact rationals, the hypergeometric probabilities
// no larger than the observed table's.
func bruteFisher(a, b, c, d int) float64 {
	r1, r2, c1 := a+b, c+d, a+c
	n := r1 + r2
	prob := func(x int) *big.Rat {
		num := new(big.Int).Mul(new(big.Int).Binomial(int64(r1), int64(x)), new(big.Int).Binomial(int64(r2), int64(c1-x)))
		return new(big.Rat).SetFrac(num, new(big.Int).Binomial(int64(n), int64(c1)))
	}
	obs := prob(a)
	limit := new(big.Rat).Mul(obs, big.NewRat(10000001, 10000000))
	sum := new(big.Rat)
	for x := max(0, c1-r2); x <= min(r1, c1); x++ {
		if p := prob(x); p.Cmp(limit) <= 0 {
			sum.Add(sum, p)
		}
	}
	f, _ := sum.Float64()
	return f
}

// TestFisherR: R's ?fisher.test TeaTasting, matrix(c(3, 1, 1, 3), 2):
// p-value = 0.4857 (34/70); Wikipedia's "Fisher's exact test" example
// (1 9 / 11 3): two-tailed p = 0.002759.
func TestFisherR(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b, c, d int
		want, tol  float64
	}{
		{3, 1, 1, 3, 34.0 / 70, 1e-12},
		{1, 9, 11, 3, 0.002759, 5e-7},
		{0, 0, 0, 0, 1, 0},
		{5, 0, 5, 0, 1, 0},
	} {
		if got := FisherExact(tc.a, tc.b, tc.c, tc.d); !near(got, tc.want, tc.tol) {
			t.Errorf("FisherExact(%d, %d, %d, %d) = %v, want %v", tc.a, tc.b, tc.c, tc.d, got, tc.want)
		}
	}
}

func TestFisherBrute(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(9, 10))
	for range 400 {
		a, b, c, d := rng.IntN(30), rng.IntN(60), rng.IntN(30), rng.IntN(60)
		got, want := FisherExact(a, b, c, d), bruteFisher(a, b, c, d)
		if !near(got, want, 1e-9*max(want, 1e-300)+1e-15) {
			t.Fatalf("FisherExact(%d, %d, %d, %d) = %v, exact rationals give %v", a, b, c, d, got, want)
		}
		// The p-value does not depend on which row or column comes first.
		for _, alt := range [][4]int{{c, d, a, b}, {b, a, d, c}, {a, c, b, d}} {
			if p := FisherExact(alt[0], alt[1], alt[2], alt[3]); !near(p, got, 1e-9*got+1e-15) {
				t.Fatalf("FisherExact%v = %v, but (%d, %d, %d, %d) = %v", alt, p, a, b, c, d, got)
			}
		}
	}
}

func TestFisherLarge(t *testing.T) {
	t.Parallel()
	// 10⁷ boots per side: no overflow, and agreement with the normal
	// approximation of the difference of two proportions where it holds.
	n := 10000000
	p := FisherExact(1000, n-1000, 1100, n-1100)
	// Pooled z test: z = 100/√(2·1050·(1 − 1050/n)) ≈ 2.182, p ≈ 0.0291.
	if p < 0.025 || p > 0.034 {
		t.Errorf("FisherExact(1000, 1100 of 10⁷) = %v, want ≈ 0.029", p)
	}
	if p := FisherExact(n, n, n, n); !near(p, 1, 1e-6) {
		t.Errorf("FisherExact(n, n, n, n) = %v, want 1", p)
	}
	if p := FisherExact(n, 0, 0, n); p < 0 || p > 1e-300 {
		t.Errorf("FisherExact(n, 0, 0, n) = %v, want 0", p)
	}
}

// FuzzStats checks, on any input, the invariants the API relies on:
// ordered summaries, p-values in [0, 1], intervals around their
// estimates, and JSON-encodable results.
func FuzzStats(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(4), uint16(3), uint16(7), uint16(1), uint16(9))
	f.Add([]byte{0, 0, 0, 0, 255, 255, 255, 255, 127}, uint8(2), uint16(0), uint16(0), uint16(0), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, split uint8, fa, fb, fc, fd uint16) {
		var x []float64
		for i := 0; i+1 < len(data) && len(x) < 400; i += 2 {
			v := float64(int(data[i])<<8|int(data[i+1])) / 64
			if data[i] == 0xff {
				v = []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e200}[data[i+1]%4]
			}
			x = append(x, v)
		}
		cut := min(int(split), len(x))
		a, b := x[:cut], x[cut:]
		s := Summarize(x)
		if s.N > 0 && !(s.Min <= s.Median && s.Median <= s.P95 && s.P95 <= s.Max && s.Min <= s.Mean && s.Mean <= s.Max) {
			t.Fatalf("Summarize(%v) = %+v: not ordered", x, s)
		}
		if ci := s.MedianCI; ci != nil && !(ci[0] <= s.Median && s.Median <= ci[1]) {
			t.Fatalf("Summarize(%v).MedianCI = %v, median %v", x, *ci, s.Median)
		}
		r := MannWhitney(a, b)
		if r.P < 0 || r.P > 1 || r.U < 0 || r.U > float64(r.N*r.M) {
			t.Fatalf("MannWhitney = %+v", r)
		}
		sh := HodgesLehmann(a, b)
		if ci := sh.CI; ci != nil && !(ci[0] <= sh.Estimate && sh.Estimate <= ci[1]) {
			t.Fatalf("HodgesLehmann = %v, CI %v", sh.Estimate, *ci)
		}
		p := FisherExact(int(fa), int(fb), int(fc), int(fd))
		if p < 0 || p > 1 {
			t.Fatalf("FisherExact = %v", p)
		}
		if _, err := json.Marshal([]any{s, r, sh, p}); err != nil {
			t.Fatalf("results do not encode as JSON: %v", err)
		}
	})
}

// TestMannWhitneyCalibrated: under the null (both samples from one
// distribution), p < 0.05 about 5 % of the time, on the exact and on the
// approximate path; and the shift's 95 % interval covers 0 about 95 % of
// the time.
func TestMannWhitneyCalibrated(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(21, 22))
	for _, size := range []int{30, 200} {
		const trials = 400
		rejected, missed := 0, 0
		for range trials {
			a, b := make([]float64, size), make([]float64, size)
			for i := range a {
				a[i], b[i] = rng.ExpFloat64(), rng.ExpFloat64()
			}
			r := MannWhitney(a, b)
			if r.Exact != (size < ExactLimit) {
				t.Fatalf("MannWhitney(%d, %d).Exact = %v", size, size, r.Exact)
			}
			if r.P < 0.05 {
				rejected++
			}
			if ci := HodgesLehmann(a, b).CI; ci[0] > 0 || ci[1] < 0 {
				missed++
			}
		}
		// Binomial(400, 0.05): mean 20, sd 4.4.
		if rejected < 8 || rejected > 36 || missed < 8 || missed > 36 {
			t.Errorf("n = m = %d: p < 0.05 in %d of %d trials, 0 outside the CI in %d; want about 20", size, rejected, trials, missed)
		}
	}
}
