// Package ginmw is the Gin middleware of a tenantry program: it verifies a
// request's bearer token, resolves its tenant through the directory, and
// runs the handler's queries in that tenant's scope.
//
// A route group for tenant data reads
//
//	g := r.Group("/orders", mw.Authenticate, mw.RequireTenant)
//	g.GET("", ginmw.Handle(func(c *gin.Context) error {
//		return ginmw.Tx(c, func(tx *gorm.DB) error { ... })
//	}))
//
// Refusals are RFC 9457 problem details (package problem): 401 for a
// missing or invalid token, 403 for a tenant that does not exist or is not
// served, 409 for a write to a read-only tenant, 503 for a database that is
// away.
package ginmw

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/problem"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/token"
	"gorm.io/gorm"
)

// stateKey holds the request's *state on the gin.Context.
const stateKey = "tenantry.auth"

// state is what Authenticate and RequireTenant learned of a request, in one
// value: each value set on a gin.Context is boxed, an allocation apiece.
type state struct {
	claims *token.Claims
	// name is the token's tenant, once RequireTenant has read it.
	name string
	// tenant is set, and resolved true, once RequireTenant served it.
	tenant   tenancy.Resolved
	resolved bool
}

func stateOf(c *gin.Context) *state {
	v, _ := c.Get(stateKey)
	st, _ := v.(*state)
	return st
}

// Config configures a Middleware.
type Config struct {
	// Verifier checks bearer tokens (token.NewVerifier).
	Verifier *token.Verifier
	// Directory resolves the tenants that tokens name.
	Directory *tenancy.Directory
	// Fail answers a refused request; it must abort the chain. Nil means
	// Fail, the package's problem+json writer.
	Fail func(c *gin.Context, err error)
}

// Middleware holds the handlers of one configuration.
type Middleware struct {
	verifier *token.Verifier
	dir      *tenancy.Directory
	fail     func(c *gin.Context, err error)
}

// New checks cfg and returns its Middleware.
func New(cfg Config) (*Middleware, error) {
	if cfg.Verifier == nil || cfg.Directory == nil {
		return nil, errors.New("ginmw: a Verifier and a Directory are required")
	}
	if cfg.Fail == nil {
		cfg.Fail = Fail
	}
	return &Middleware{verifier: cfg.Verifier, dir: cfg.Directory, fail: cfg.Fail}, nil
}

// Authenticate verifies the bearer token; any failure is a 401. Two
// Authorization headers are refused: which one counts would depend on the
// reader.
func (m *Middleware) Authenticate(c *gin.Context) {
	if len(c.Request.Header.Values("Authorization")) > 1 {
		m.fail(c, problem.Unauthorized(errors.New("more than one Authorization header")))
		return
	}
	claims, err := m.verifier.Verify(c.GetHeader("Authorization"))
	if err != nil {
		m.fail(c, problem.Unauthorized(err))
		return
	}
	c.Set(stateKey, &state{claims: claims})
	c.Next()
}

// RequireAdmin lets only platform-admin tokens through; it follows
// Authenticate.
func (m *Middleware) RequireAdmin(c *gin.Context) {
	if cl := Claims(c); cl == nil || !cl.IsAdmin() {
		m.fail(c, problem.Forbidden("an admin token is required"))
		return
	}
	c.Next()
}

// RequireTenant resolves the token's tenant to a registry entry that may be
// served (active, or read-only for reads); it follows Authenticate. A token
// without a tenant, or naming a tenant that does not exist or is
// suspended, is forbidden: the token itself was valid. A write to a
// read-only tenant is a conflict.
func (m *Middleware) RequireTenant(c *gin.Context) {
	st := stateOf(c)
	if st == nil || st.claims == nil || st.claims.Tenant == "" {
		m.fail(c, problem.Forbidden("the token names no tenant"))
		return
	}
	cl := st.claims
	st.name = cl.Tenant
	t, err := m.dir.Active(c.Request.Context(), cl.Tenant)
	if err == nil && !m.verifier.Bound(cl, t.Row()) {
		t, err = m.currentIncarnation(c, cl, t)
	}
	switch {
	case errors.Is(err, models.ErrNotFound):
		m.fail(c, problem.Forbidden("the token's tenant does not exist"))
		return
	case errors.Is(err, models.ErrForbidden):
		m.fail(c, problem.Forbidden("the token's tenant is not active"))
		return
	case err != nil:
		m.fail(c, err)
		return
	}
	if t.ReadOnly() && !readMethod(c.Request.Method) {
		// Turned away before any SQL; the scope's SELECT-only role would
		// refuse the write anyway (a handler bug cannot get past it).
		m.fail(c, problem.Client(models.ErrReadOnly,
			"the tenant is read-only: reads are served, writes are refused until an admin makes it active"))
		return
	}
	st.tenant, st.resolved = t, true
	c.Next()
}

func readMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// currentIncarnation is called when a token is not bound to the cached
// tenant t. The cache may hold an older incarnation than the registry
// (another instance deleted and re-created the name); if so, it evicts the
// name and judges the token against the fresh row. A token for an earlier
// incarnation reads like one for a tenant that does not exist (403, the
// same words): its tenant is gone, the signature was fine.
func (m *Middleware) currentIncarnation(c *gin.Context, cl *token.Claims, t tenancy.Resolved) (tenancy.Resolved, error) {
	ctx := c.Request.Context()
	fresh, err := m.dir.Get(ctx, cl.Tenant)
	if err == nil && fresh.ID != t.ID() {
		m.dir.Forget(cl.Tenant)
		t, err = m.dir.Active(ctx, cl.Tenant)
	}
	if err == nil && !m.verifier.Bound(cl, t.Row()) {
		var iat time.Time
		if cl.IssuedAt != nil {
			iat = cl.IssuedAt.Time
		}
		row := t.Row()
		err = fmt.Errorf("token for tenant %q issued at %s (tenant id %d) is not for its incarnation %d created at %s: %w",
			cl.Tenant, iat.Format(time.RFC3339), cl.TenantID, row.ID, row.CreatedAt.Format(time.RFC3339), models.ErrNotFound)
	}
	return t, err
}

// Claims returns the verified claims of the request (after
// Authenticate), or nil.
func Claims(c *gin.Context) *token.Claims {
	if st := stateOf(c); st != nil {
		return st.claims
	}
	return nil
}

// TenantName returns the tenant the request's token names, once
// RequireTenant has read it, whether or not it was served: for logs.
func TenantName(c *gin.Context) string {
	if st := stateOf(c); st != nil {
		return st.name
	}
	return ""
}

// Tenant returns the tenant RequireTenant resolved for the request.
func Tenant(c *gin.Context) (tenancy.Resolved, bool) {
	if st := stateOf(c); st != nil && st.resolved {
		return st.tenant, true
	}
	return tenancy.Resolved{}, false
}

// Tx runs fn in one transaction scoped to the request's tenant
// (tenancy.WithTx), under the request's context and deadline. Without a
// resolved tenant (a route that lacks RequireTenant) it returns
// tenancy.ErrUnresolved and opens nothing.
func Tx(c *gin.Context, fn func(tx *gorm.DB) error) error {
	t, _ := Tenant(c)
	return tenancy.WithTx(c.Request.Context(), t, fn)
}

// Handle adapts a handler that returns an error: a non-nil error is
// answered by Fail.
func Handle(fn func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			Fail(c, err)
		}
	}
}

// Fail answers err as problem+json (package problem) and aborts the
// chain: 4xx answers carry the detail written for clients, 5xx answers
// nothing of the cause. It logs nothing: a program that logs its failures
// (with the cause a 5xx hides) passes its own Config.Fail.
func Fail(c *gin.Context, err error) {
	p, retryAfter, _ := problem.From(err)
	p.Instance = c.Request.URL.Path
	problem.Write(c.Writer, p, retryAfter)
	c.Abort()
}
