package api

import (
	"github.com/gin-gonic/gin"
)

// routes registers every route in one place. Collection routes answer with
// and without the trailing slash (clients of the service tenantry replaces
// use "/items/"); nothing
// redirects.
func (s *Server) routes() {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	_ = r.SetTrustedProxies(nil)
	r.Use(s.requestID, s.instrument, s.accessLog, s.recovery, s.deadline, s.limitBody)
	r.NoRoute(func(c *gin.Context) { s.fail(c, errNoRoute) })
	r.NoMethod(func(c *gin.Context) { s.fail(c, errNoMethod) })

	r.GET("/healthz", s.handleHealthz)
	r.GET("/readyz", s.handle(s.handleReadyz))
	if s.metricsHere {
		r.GET("/metrics", s.handleMetrics())
	}
	r.GET("/openapi.json", s.handleOpenAPI)

	admin := r.Group("/admin", s.mw.Authenticate, s.mw.RequireAdmin)
	for _, p := range []string{"/tenants", "/tenants/"} {
		admin.POST(p, s.handle(s.handleTenantCreate))
		admin.GET(p, s.handle(s.handleTenantList))
	}
	admin.GET("/tenants/:name", s.handle(s.handleTenantGet))
	admin.PATCH("/tenants/:name", s.handle(s.handleTenantPatch))
	admin.DELETE("/tenants/:name", s.handle(s.handleTenantDelete))

	items := r.Group("/items", s.mw.Authenticate, s.mw.RequireTenant, s.rateLimit)
	for _, p := range []string{"", "/"} {
		items.GET(p, s.handle(s.handleItemList))
		items.POST(p, s.handle(s.handleItemCreate))
	}
	items.GET("/:id", s.handle(s.handleItemGet))
	items.PUT("/:id", s.handle(s.handleItemUpdate))
	items.DELETE("/:id", s.handle(s.handleItemDelete))
	s.router = r
}
