package main

import (
	"encoding/json"
	"math"
	"testing"
)

func TestPercentileIsNearestRank(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[99-i] = float64(i + 1) // 100..1, unsorted on purpose
	}
	for _, tc := range []struct{ p, want float64 }{{50, 50}, {99, 99}, {100, 100}, {1, 1}, {0.5, 1}} {
		if got := percentile(xs, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile([]float64{3, 1, 2}, 50); got != 2 {
		t.Errorf("p50 of 3 values = %v, want 2", got)
	}
	if xs[0] != 100 {
		t.Error("percentile sorted its argument in place")
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("p50 of nothing is not NaN")
	}
}

func TestSummaryMedianAndRangeSkipUnmeasured(t *testing.T) {
	s := summarize([]float64{1, math.NaN(), 0.5, 0.75, 1.25})
	if s.Median != 0.875 || s.Min != 0.5 || s.Max != 1.25 || s.N != 4 {
		t.Fatalf("got %+v, want median 0.875, range 0.5-1.25 over 4", s)
	}
	if s := summarize([]float64{2, 1, 3}); s.Median != 2 || s.N != 3 {
		t.Fatalf("odd count: got %+v, want median 2", s)
	}
	b, err := json.Marshal(summarize(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"median":null,"min":null,"max":null,"n":0}`; got != want {
		t.Fatalf("JSON of an empty summary = %s, want %s", got, want)
	}
}

func TestRatiosArePerRound(t *testing.T) {
	got := ratios([]float64{90, 50, 10}, []float64{100, 0, 20})
	if got[0] != 0.9 || !math.IsNaN(got[1]) || got[2] != 0.5 {
		t.Fatalf("got %v, want [0.9 NaN 0.5]", got)
	}
	if s := summarize(got); s.Median != 0.7 || s.N != 2 {
		t.Fatalf("summary of ratios %+v, want median 0.7 of 2", s)
	}
}
