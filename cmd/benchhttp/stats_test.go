package main

import (
	"bufio"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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

func TestParseStatCountsFieldsAfterTheCommandName(t *testing.T) {
	// A command name with a space and a parenthesis, as a process may set.
	line := "4242 (postgres: a) b) S 4100 4242 4242 0 -1 4194560 100 0 0 0 731 219 17 5 20 0 1 0 123 0 0\n"
	s, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := (procStat{ppid: 4100, utime: 731, stime: 219, cutime: 17, cstime: 5}); s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	if _, err := parseStat("4242 (x) S 1 2"); err == nil {
		t.Fatal("a short line parsed without error")
	}
}

func TestParseMetricsSumsEachMetricOverItsLabels(t *testing.T) {
	text := "# HELP go_memstats_mallocs_total Total number of heap objects allocated.\n" +
		"# TYPE go_memstats_mallocs_total counter\n" +
		"go_memstats_mallocs_total 1.234567e+06\n" +
		"go_memstats_mallocs_total_extra 5\n" +
		`go_sql_max_idle_closed_total{db_name="a b}c"} 7` + "\n" +
		`go_sql_max_idle_closed_total{db_name="other"} 3 1700000000000` + "\n"
	m, err := parseMetrics(bufio.NewScanner(strings.NewReader(text)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"go_memstats_mallocs_total": 1234567, "go_memstats_mallocs_total_extra": 5, "go_sql_max_idle_closed_total": 10}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Fatalf("parsed metrics (-want +got):\n%s", diff)
	}
	if _, err := parseMetrics(bufio.NewScanner(strings.NewReader("up\n"))); err == nil {
		t.Fatal("a sample without a value parsed without error")
	}
}

func TestSpliceReplacesOnlyTheGeneratedPart(t *testing.T) {
	doc := "# Performance\n\nprose before\n\n" + beginMarker + "\nold table\n" + endMarker + "\n\nclosing note\n"
	got, err := spliceGenerated(doc, "new table\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Performance\n\nprose before\n\n" + beginMarker + "\nnew table\n" + endMarker + "\n\nclosing note\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := spliceGenerated("no markers", "x"); err == nil {
		t.Fatal("a document without markers was accepted")
	}
}

func TestReportWithUnmeasuredFiguresEncodesAsJSON(t *testing.T) {
	nan := num(math.NaN())
	c := Cell{Tenants: 1, Endpoint: epGet, Variant: "a", Rounds: []Round{{RPS: 1000, AllocsPerReq: nan, P99ms: 2.5}}}
	c.AllocsPerReq = summarize(series(&c, func(x Round) num { return x.AllocsPerReq }))
	c.RPS = summarize(series(&c, func(x Round) num { return x.RPS }))
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Rounds []struct {
			RPS    *float64 `json:"rps"`
			Allocs *float64 `json:"allocs_per_req"`
		} `json:"rounds"`
		RPS Summary `json:"rps"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if back.Rounds[0].Allocs != nil || back.Rounds[0].RPS == nil || *back.Rounds[0].RPS != 1000 || back.RPS.Median != 1000 {
		t.Fatalf("round trip through JSON lost figures: %s", b)
	}
}
