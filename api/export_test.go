package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// RoutesOf exposes the router's routes to the external tests.
func RoutesOf(s *Server) gin.RoutesInfo { return s.router.Routes() }

// AddFaultRoutes adds routes that fail on purpose inside a tenant scope:
// /_test/panic writes an item, then panics; /_test/sleep writes an item and
// waits ?s= seconds (default 5) in the database; /_test/pair writes items
// ?name=X#1 and X#2 with ?s= seconds of pg_sleep between them; /_test/idle
// writes an item, holds the transaction idle for ?s= seconds in Go, then
// queries again. None of them is part of the API.
func AddFaultRoutes(s *Server) {
	g := s.router.Group("/_test", s.mw.Authenticate, s.mw.RequireTenant)
	g.GET("/panic", s.handle(func(c *gin.Context) error {
		return s.withTx(c, func(tx *gorm.DB) error {
			if _, err := models.CreateItem(tx, models.ItemInput{Name: "ghost"}); err != nil {
				return err
			}
			panic("boom: a handler bug")
		})
	}))
	g.GET("/sleep", s.handle(func(c *gin.Context) error {
		return s.withTx(c, func(tx *gorm.DB) error {
			if _, err := models.CreateItem(tx, models.ItemInput{Name: "ghost"}); err != nil {
				return err
			}
			return tx.Exec("SELECT pg_sleep(?)", seconds(c, 5)).Error
		})
	}))
	g.POST("/pair", s.handle(func(c *gin.Context) error {
		name := c.Query("name")
		return s.withTx(c, func(tx *gorm.DB) error {
			if _, err := models.CreateItem(tx, models.ItemInput{Name: name + "#1", Description: "desc-" + name + "#1"}); err != nil {
				return err
			}
			if err := tx.Exec("SELECT pg_sleep(?)", seconds(c, 0)).Error; err != nil {
				return err
			}
			_, err := models.CreateItem(tx, models.ItemInput{Name: name + "#2", Description: "desc-" + name + "#2"})
			return err
		})
	}))
	g.GET("/idle", s.handle(func(c *gin.Context) error {
		return s.withTx(c, func(tx *gorm.DB) error {
			if _, err := models.CreateItem(tx, models.ItemInput{Name: "ghost"}); err != nil {
				return err
			}
			select {
			case <-time.After(time.Duration(seconds(c, 1) * float64(time.Second))):
			case <-c.Request.Context().Done():
				return context.Cause(c.Request.Context())
			}
			return tx.Exec("SELECT 1").Error
		})
	}))
}

// seconds reads ?s= as a duration in seconds, capped at 30.
func seconds(c *gin.Context, def float64) float64 {
	v, err := strconv.ParseFloat(c.Query("s"), 64)
	if err != nil || v < 0 || v > 30 {
		return def
	}
	return v
}

// AddBenchRoute adds GET /_bench/item behind the same middleware as
// /items/:id (token, tenant, rate limit) whose handler answers a fixed item
// without a scope: the middleware chain's own cost, database aside.
func AddBenchRoute(s *Server) {
	g := s.router.Group("/_bench", s.mw.Authenticate, s.mw.RequireTenant, s.rateLimit)
	g.GET("/item", s.handle(func(c *gin.Context) error {
		if _, ok := c.Get(requestIDKey); !ok {
			return errors.New("no request id")
		}
		return writeItem(c, http.StatusOK, models.Item{ID: 7, Name: "bench item", Description: "a fixed item"})
	}))
}
