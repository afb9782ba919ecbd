package main

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of xs by the
// nearest-rank method: the smallest value with at least p % of the values at
// or below it. It never interpolates, so a reported p99 is a latency some
// request really had. xs need not be sorted; NaN for no values.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(0, min(len(s)-1, rank-1))]
}

// durationsMs converts latencies to milliseconds for percentile.
func durationsMs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

// Summary is the spread of one figure over the rounds of a run: its median
// (the mean of the middle two for an even count) and its range. NaN values
// (a figure a round could not measure) are left out; N says how many remain.
type Summary struct {
	Median num `json:"median"`
	Min    num `json:"min"`
	Max    num `json:"max"`
	N      int `json:"n"`
}

// num is a figure that may be unmeasured (NaN); JSON has no NaN, so it is
// written as null.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', 6, 64), nil
}

func (n *num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = num(math.NaN())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	*n = num(f)
	return err
}

func summarize(xs []float64) Summary {
	s := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		nan := num(math.NaN())
		return Summary{Median: nan, Min: nan, Max: nan}
	}
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Summary{Median: num(m), Min: num(s[0]), Max: num(s[len(s)-1]), N: len(s)}
}

// ratios divides each round's figure by the baseline's figure of the same
// round. Ratios are taken per round, before the median, so that a slow
// stretch of the shared machine hits numerator and denominator alike.
func ratios(xs, base []float64) []float64 {
	out := make([]float64, len(xs))
	for i := range xs {
		out[i] = math.NaN()
		if i < len(base) && base[i] != 0 {
			out[i] = xs[i] / base[i]
		}
	}
	return out
}
