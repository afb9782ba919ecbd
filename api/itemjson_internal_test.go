package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/models"
)

// itemJSONCases are strings that take every branch of appendJSONString.
var itemJSONCases = []string{
	"", "plain item", `quote " and backslash \`, "<script>&amp;</script>",
	"tab\tnewline\ncr\rbackspace\bformfeed\f", "\x00\x01\x1f\x7f", "é ü 日本語 🎉",
	"line\u2028para\u2029sep", "bad \xff utf-8 \xc3", "\xe2\x82", "literal \ufffd replacement",
}

var jsonTestTime = time.Date(2026, 11, 26, 3, 4, 5, 123456789, time.FixedZone("x", 5*3600+1800))

// TestItemJSONMatchesEncodingJSON holds the hand-written item encoder to
// the bytes and Content-Type of c.JSON (encoding/json), for one item and
// for pages, the empty one included.
func TestItemJSONMatchesEncodingJSON(t *testing.T) {
	var page []models.Item
	for i, s := range itemJSONCases {
		it := models.Item{ID: int64(i) * 1e15, Name: s, Description: s + s,
			CreatedAt: jsonTestTime, UpdatedAt: jsonTestTime.UTC().Truncate(time.Second)}
		page = append(page, it)
		compareJSON(t, it, func(c *gin.Context) error { return writeItem(c, http.StatusCreated, it) })
	}
	for _, p := range [][]models.Item{{}, page[:1], page} {
		compareJSON(t, p, func(c *gin.Context) error { return writeItems(c, http.StatusCreated, p) })
	}
}

// TestItemJSONRefusesWhatEncodingJSONRefuses: a time outside years
// 0-9999 is an error before anything is written, as c.JSON would fail.
func TestItemJSONRefusesWhatEncodingJSONRefuses(t *testing.T) {
	it := models.Item{ID: 1, CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := json.Marshal(it); err == nil {
		t.Fatal("encoding/json accepted the year 10000; the test's premise is gone")
	}
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	if err := writeItem(c, http.StatusOK, it); err == nil {
		t.Fatal("writeItem accepted the year 10000")
	}
	if rec.Body.Len() != 0 || c.Writer.Written() {
		t.Fatalf("writeItem wrote %q before failing", rec.Body)
	}
}

// FuzzItemJSON compares the encoders on arbitrary strings.
func FuzzItemJSON(f *testing.F) {
	for _, s := range itemJSONCases {
		f.Add(s, int64(len(s)))
	}
	f.Fuzz(func(t *testing.T, s string, id int64) {
		it := models.Item{ID: id, Name: s, Description: s, CreatedAt: jsonTestTime}
		want, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendItem(nil, it)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("appendItem(%q) = %s, %v; want %s", s, got, err, want)
		}
	})
}

func compareJSON(t *testing.T, v any, write func(c *gin.Context) error) {
	t.Helper()
	want := httptest.NewRecorder()
	wc, _ := gin.CreateTestContext(want)
	wc.JSON(http.StatusCreated, v)
	got := httptest.NewRecorder()
	gc, _ := gin.CreateTestContext(got)
	if err := write(gc); err != nil {
		t.Fatal(err)
	}
	if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
		t.Errorf("status %d, Content-Type %q; c.JSON: %d, %q", got.Code, got.Header().Get("Content-Type"), want.Code, want.Header().Get("Content-Type"))
	}
	if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
		t.Errorf("\n got %s\nwant %s", got.Body, want.Body)
	}
}
