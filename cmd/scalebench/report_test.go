package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteOutReplacesOnlyTheMarkedBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "SCALE.md")
	before := "# Scale\n\nprose before\n" + beginMarker + "\nold figures\n" + endMarker + "\n\n## Backups\nprose after\n"
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeOut(path, "new figures\n"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Scale\n\nprose before\n" + beginMarker + "\nnew figures\n" + endMarker + "\n\n## Backups\nprose after\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if err := os.WriteFile(path, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeOut(path, "x"); err == nil {
		t.Fatal("writeOut into a file without markers succeeded; want an error, not a silent overwrite")
	}
}

func TestRatiosArePerRound(t *testing.T) {
	// Each round's ratio is taken within the round: 0.5, 0.25, 0.5.
	med, lo, hi := ratios([]float64{50, 10, 40}, []float64{100, 40, 80})
	if math.Abs(med-0.5) > 1e-9 || math.Abs(lo-0.25) > 1e-9 || math.Abs(hi-0.5) > 1e-9 {
		t.Fatalf("ratios = %v (%v–%v); want 0.5 (0.25–0.5)", med, lo, hi)
	}
	if med, _, _ := ratios([]float64{1}, nil); med != 0 {
		t.Fatalf("ratios without a baseline = %v, want 0", med)
	}
}
