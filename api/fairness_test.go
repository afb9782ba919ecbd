package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"gorm.io/gorm"
)

// newStackWith is newStack with the server's rate limit set.
func newStackWith(t testing.TB, pool tenancy.PoolConfig, rl api.RateLimit) *stack {
	t.Helper()
	db, _ := tenancytest.Open(t, pool)
	auth := api.AuthConfig{Secret: testSecret}
	logs := &syncBuffer{}
	dir := tenancy.NewDirectory(db)
	srv, err := api.NewServer(db, dir, api.Config{Auth: auth, RateLimit: rl,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return &stack{db: db, dir: dir, srv: srv, auth: auth, logs: logs}
}

// seedItems inserts n items into tenant name's schema in one statement.
func (s *stack) seedItems(t testing.TB, name string, n int) {
	t.Helper()
	ten, err := s.dir.Active(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	err = tenancy.WithTx(context.Background(), s.db, ten, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO items (name, description, created_at, updated_at)
			SELECT 'item ' || g, 'd', now(), now() FROM generate_series(1, $1) g`, n).Error
	})
	if err != nil {
		t.Fatal(err)
	}
}

var (
	policyField = regexp.MustCompile(`^"tenant";q=(\d+);w=(\d+)$`)
	limitField  = regexp.MustCompile(`^"tenant";r=(\d+);t=(\d+)$`)
)

// A tenant past its burst gets 429 problem+json with Retry-After and the
// RateLimit fields, before any database work; another tenant's bucket is
// its own.
func TestRateLimitAnswers429PerTenant(t *testing.T) {
	s := newStackWith(t, tenancy.DefaultPool, api.RateLimit{PerSecond: 0.5, Burst: 3})
	s.onboard(t, "chatty", "calm")
	chatty, calm := s.token(t, "chatty", false), s.token(t, "calm", false)
	for i := range 3 {
		r := s.do(t, "GET", "/items", chatty, nil)
		want(t, r, http.StatusOK)
		if got := r.header.Get("RateLimit-Policy"); !policyField.MatchString(got) || got != `"tenant";q=3;w=6` {
			t.Fatalf("RateLimit-Policy = %q, want \"tenant\";q=3;w=6", got)
		}
		m := limitField.FindStringSubmatch(r.header.Get("RateLimit"))
		if m == nil || m[1] != strconv.Itoa(2-i) {
			t.Fatalf("request %d: RateLimit = %q, want r=%d", i, r.header.Get("RateLimit"), 2-i)
		}
	}
	r := s.do(t, "POST", "/items", chatty, map[string]string{"name": "one too many"})
	want(t, r, http.StatusTooManyRequests)
	// An empty bucket refills one token in 2 s at 0.5/s.
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After = %q, want 1 or 2 seconds", r.header.Get("Retry-After"))
	}
	if m := limitField.FindStringSubmatch(r.header.Get("RateLimit")); m == nil || m[1] != "0" {
		t.Fatalf("RateLimit on the 429 = %q, want r=0", r.header.Get("RateLimit"))
	}
	want(t, s.do(t, "GET", "/items", calm, nil), http.StatusOK)

	// The refused write changed nothing.
	ten, err := s.dir.Active(context.Background(), "chatty")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := tenancy.WithTx(context.Background(), s.db, ten, func(tx *gorm.DB) error {
		return tx.Model(&models.Item{}).Count(&n).Error
	}); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("items after a refused create = %d, want 0", n)
	}
}

// Without a rate limit configured no RateLimit fields are sent.
func TestNoRateLimitByDefault(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	s.onboard(t, "acme")
	r := s.do(t, "GET", "/items", s.token(t, "acme", false), nil)
	want(t, r, http.StatusOK)
	if h := r.header.Get("RateLimit"); h != "" {
		t.Fatalf("RateLimit = %q with no limit configured", h)
	}
}

// ?after= walks every item exactly once in id order, and refuses to be
// mixed with offset or to be anything but a non-negative id.
func TestKeysetPaginationWalksEveryItemOnce(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	s.onboard(t, "acme")
	s.seedItems(t, "acme", 25)
	tok := s.token(t, "acme", false)
	var seen []int64
	after := int64(0)
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("pagination does not end")
		}
		r := s.do(t, "GET", fmt.Sprintf("/items?limit=10&after=%d", after), tok, nil)
		want(t, r, http.StatusOK)
		var items []models.Item
		r.json(t, &items)
		if len(items) == 0 {
			break
		}
		for _, it := range items {
			if it.ID <= after {
				t.Fatalf("page after %d holds id %d", after, it.ID)
			}
			seen = append(seen, it.ID)
			after = it.ID
		}
	}
	if len(seen) != 25 {
		t.Fatalf("walked %d items, want 25: %v", len(seen), seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("ids not increasing: %v", seen)
		}
	}
	for _, q := range []string{"after=-1", "after=x", "after=1.5", "after=99999999999999999999", "after=3&offset=2"} {
		want(t, s.do(t, "GET", "/items?"+q, tok, nil), http.StatusBadRequest)
	}
	// after=0 is the first page; offset=0 beside after is no offset at all.
	want(t, s.do(t, "GET", "/items?after=0&offset=0", tok, nil), http.StatusOK)
}
