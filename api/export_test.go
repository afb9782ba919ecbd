package api

import (
	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// RoutesOf exposes the router's routes to the external tests.
func RoutesOf(s *Server) gin.RoutesInfo { return s.router.Routes() }

// AddFaultRoutes adds routes that fail on purpose inside a tenant scope:
// /_test/panic writes an item, then panics; /_test/sleep waits in the
// database until its request is cancelled.
func AddFaultRoutes(s *Server) {
	g := s.router.Group("/_test", s.authenticate, s.requireTenant)
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
			return tx.Exec("SELECT pg_sleep(5)").Error
		})
	}))
}
