package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// seedServer is variant (d), the approach tenantry replaced, ported as it
// was: verify the same HS256 token, then per request a session-level
// SET search_path on the shared GORM handle followed by the query on the
// same handle. Nothing ties the two statements to one pooled connection,
// so under concurrency the query may run on a connection whose path
// another request set, and read or write another tenant's rows. The
// benchmark counts how often. This file is the only place in the
// repository allowed a session-level SET search_path (arch_test.go
// exempts it): it exists to measure that mistake.
func seedServer(ctx context.Context, url string, pool int, secret []byte, logTo io.Writer, reg *prometheus.Registry) (*gin.Engine, error) {
	db, err := openGORM(url, pool, reg)
	if err != nil {
		return nil, err
	}
	// The tenant registry, read once: that service looked tenants up too, and
	// a cached lookup keeps the comparison about the scope, not the
	// registry. Only schema names found here ever reach SQL, quoted.
	var rows []struct{ Name, SchemaName string }
	if err := db.WithContext(ctx).Raw("SELECT name, schema_name FROM " + migrations.TenantsTable).Scan(&rows).Error; err != nil {
		return nil, err
	}
	schemas := make(map[string]string, len(rows))
	for _, t := range rows {
		schemas[t.Name] = pgx.Identifier{t.SchemaName}.Sanitize()
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithLeeway(30*time.Second))
	key := func(*jwt.Token) (any, error) { return secret, nil }

	r := gin.New()
	r.Use(gin.LoggerWithWriter(logTo), gin.Recovery())
	// scoped authenticates, then points the (whole pool's) search path at
	// the tenant and hands on the shared handle.
	scoped := func(h func(c *gin.Context, db *gorm.DB)) gin.HandlerFunc {
		return func(c *gin.Context) {
			raw, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
			claims := jwt.MapClaims{}
			if !ok {
				c.Status(http.StatusUnauthorized)
				return
			}
			if _, err := parser.ParseWithClaims(raw, claims, key); err != nil {
				c.Status(http.StatusUnauthorized)
				return
			}
			name, _ := claims["tenant"].(string)
			schema, ok := schemas[name]
			if !ok {
				c.Status(http.StatusForbidden)
				return
			}
			tdb := db.WithContext(c.Request.Context())
			if err := tdb.Exec("SET search_path TO " + schema).Error; err != nil {
				c.String(http.StatusInternalServerError, "%v", err)
				return
			}
			h(c, tdb)
		}
	}
	r.GET("/items/:id", scoped(func(c *gin.Context, db *gorm.DB) {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id < 1 {
			c.Status(http.StatusBadRequest)
			return
		}
		it, err := models.GetItem(db, id)
		respond(c, http.StatusOK, it, err)
	}))
	r.GET("/items", scoped(func(c *gin.Context, db *gorm.DB) {
		limit, err := strconv.Atoi(c.DefaultQuery("limit", strconv.Itoa(models.DefaultPageSize)))
		if err != nil || limit < 0 || limit > models.MaxPageSize {
			c.Status(http.StatusBadRequest)
			return
		}
		items, err := models.ListItems(db, limit, 0)
		respond(c, http.StatusOK, items, err)
	}))
	r.POST("/items", scoped(func(c *gin.Context, db *gorm.DB) {
		var in models.ItemInput
		if err := c.ShouldBindJSON(&in); err != nil || in.Validate() != nil {
			c.Status(http.StatusBadRequest)
			return
		}
		it, err := models.CreateItem(db, in)
		respond(c, http.StatusCreated, it, err)
	}))
	return r, nil
}
