package problem_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/problem"
	"github.com/tenantry/tenantry/tenancy"
)

// Each kind of error gets its one status, its Retry-After and the detail
// meant for the client; a 5xx says nothing of its cause.
func TestEveryKindHasOneAnswer(t *testing.T) {
	secret := errors.New("password=hunter2 at 10.0.0.7")
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		retryAfter string
		detail     string
		field      string
	}{
		{"client detail", problem.Forbidden("the token names no tenant"), 403, "", "the token names no tenant", ""},
		{"field error", fmt.Errorf("create: %w", models.Invalid("name", "is required")), 400, "", "name is required", "name"},
		{"busy tenant", fmt.Errorf("scope: %w", tenancy.ErrBusy), 429, "1", "the tenant already uses its whole share of the database connections; retry shortly", ""},
		{"rate refusal rounds its wait up", &problem.ClientError{Kind: problem.ErrTooMany, Detail: "slow down", RetryAfter: 1500 * time.Millisecond}, 429, "2", "slow down", ""},
		{"database away", fmt.Errorf("%w: %w", models.ErrUnavailable, secret), 503, "1", "the database cannot serve this request right now; retry shortly", ""},
		{"unknown error", secret, 500, "", "the server failed to handle the request; quote the request id when reporting it", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, retryAfter, _ := problem.From(tc.err)
			rec := httptest.NewRecorder()
			problem.Write(rec, p, retryAfter)
			var got problem.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tc.status || got.Status != tc.status || rec.Header().Get("Retry-After") != tc.retryAfter ||
				got.Detail != tc.detail || got.Field != tc.field || rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("got %d %+v Retry-After %q; want %d, detail %q, field %q, Retry-After %q",
					rec.Code, got, rec.Header().Get("Retry-After"), tc.status, tc.detail, tc.field, tc.retryAfter)
			}
		})
	}
}

// A 401 carries the Bearer challenge (RFC 6750 section 3).
func TestUnauthorizedCarriesTheChallenge(t *testing.T) {
	p, retryAfter, _ := problem.From(problem.Unauthorized(errors.New("bad signature")))
	rec := httptest.NewRecorder()
	problem.Write(rec, p, retryAfter)
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != `Bearer realm="tenantry", error="invalid_token"` {
		t.Fatalf("got %d, WWW-Authenticate %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}
