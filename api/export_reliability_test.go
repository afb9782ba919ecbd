package api

import (
	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// AddSlowRoute adds /_test/slow: inside a tenant scope it writes an item,
// lifts the statement timeout to a minute and sleeps in the database for
// that minute, so only the request's own context can end it early.
func AddSlowRoute(s *Server) {
	g := s.router.Group("/_test", s.mw.Authenticate, s.mw.RequireTenant)
	g.GET("/slow", s.handle(func(c *gin.Context) error {
		return s.withTx(c, func(tx *gorm.DB) error {
			if _, err := models.CreateItem(tx, models.ItemInput{Name: "ghost"}); err != nil {
				return err
			}
			if err := tx.Exec("SET LOCAL statement_timeout = '60s'").Error; err != nil {
				return err
			}
			return tx.Exec("SELECT pg_sleep(60)").Error
		})
	}))
}
