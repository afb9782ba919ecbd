package ginmw_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/ginmw"
	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"github.com/tenantry/tenantry/token"
	"gorm.io/gorm"
)

func TestMain(m *testing.M) { pgtest.Run(m) }

var auth = token.Config{Secret: []byte("ginmw-test-secret-ginmw-test-secret!")}

func TestNewRequiresAVerifierAndADirectory(t *testing.T) {
	v, err := token.NewVerifier(auth)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]ginmw.Config{"no directory": {Verifier: v}, "no verifier": {Directory: &tenancy.Directory{}}} {
		if _, err := ginmw.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// A route that forgot RequireTenant cannot reach tenant data: Tx opens no
// scope and fn never runs. A read-only tenant is served reads, and a
// write is refused with 409 before any handler runs.
func TestTxNeedsTheResolvedTenant(t *testing.T) {
	te := tenancytest.New(t, tenancy.DefaultPool)
	dir := te.Directory()
	ctx := context.Background()
	row, err := dir.Onboard(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(auth)
	if err != nil {
		t.Fatal(err)
	}
	mw, err := ginmw.New(ginmw.Config{Verifier: v, Directory: dir})
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	ran := 0
	count := func(c *gin.Context) error {
		var n int64
		if err := ginmw.Tx(c, func(tx *gorm.DB) error { ran++; return tx.Model(&models.Item{}).Count(&n).Error }); err != nil {
			return err
		}
		c.JSON(http.StatusOK, n)
		return nil
	}
	var forgot error
	r.GET("/forgot", mw.Authenticate, func(c *gin.Context) {
		forgot = ginmw.Tx(c, func(*gorm.DB) error { ran++; return nil })
		c.Status(http.StatusTeapot)
	})
	r.GET("/items", mw.Authenticate, mw.RequireTenant, ginmw.Handle(count))
	r.POST("/items", mw.Authenticate, mw.RequireTenant, ginmw.Handle(count))
	tok, err := token.IssueTenantToken(auth, row, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path string) int {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := do("GET", "/forgot"); code != http.StatusTeapot || !errors.Is(forgot, tenancy.ErrUnresolved) || ran != 0 {
		t.Fatalf("without RequireTenant: %d, Tx = %v, fn ran %d times; want ErrUnresolved and no run", code, forgot, ran)
	}
	if code := do("GET", "/items"); code != http.StatusOK || ran != 1 {
		t.Fatalf("GET /items: %d (fn ran %d times), want 200", code, ran)
	}
	if _, err := dir.SetStatus(ctx, "acme", models.StatusReadOnly); err != nil {
		t.Fatal(err)
	}
	if code := do("GET", "/items"); code != http.StatusOK || ran != 2 {
		t.Fatalf("GET /items of a read-only tenant: %d (fn ran %d times), want 200", code, ran)
	}
	if code := do("POST", "/items"); code != http.StatusConflict || ran != 2 {
		t.Fatalf("POST /items of a read-only tenant: %d (fn ran %d times), want 409 before the handler", code, ran)
	}
}
