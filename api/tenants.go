package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/models"
)

func (s *Server) handleTenantCreate(c *gin.Context) error {
	var in struct {
		Name *string `json:"name"`
	}
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return models.Invalid("name", "is required")
	}
	start := time.Now()
	t, err := s.dir.Onboard(c.Request.Context(), *in.Name)
	s.metrics.onboard.WithLabelValues(outcome(err)).Observe(time.Since(start).Seconds())
	if errors.Is(err, models.ErrConflict) {
		return &clientError{Kind: models.ErrConflict, Detail: "a tenant with this name (or one deriving the same schema) exists"}
	}
	if err != nil {
		return err
	}
	c.Header("Location", "/admin/tenants/"+t.Name)
	c.JSON(http.StatusCreated, t)
	return nil
}

func (s *Server) handleTenantList(c *gin.Context) error {
	ts, err := s.dir.List(c.Request.Context())
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, ts)
	return nil
}

func (s *Server) handleTenantGet(c *gin.Context) error {
	t, err := s.dir.Get(c.Request.Context(), c.Param("name"))
	if err != nil {
		return tenantErr(err)
	}
	c.JSON(http.StatusOK, t)
	return nil
}

// handleTenantPatch changes a tenant's status (suspend or resume).
func (s *Server) handleTenantPatch(c *gin.Context) error {
	var in struct {
		Status *models.Status `json:"status"`
	}
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.Status == nil {
		return models.Invalid("status", "is required")
	}
	t, err := s.dir.SetStatus(c.Request.Context(), c.Param("name"), *in.Status)
	if err != nil {
		return tenantErr(err)
	}
	c.JSON(http.StatusOK, t)
	return nil
}

func (s *Server) handleTenantDelete(c *gin.Context) error {
	if err := s.dir.Offboard(c.Request.Context(), c.Param("name")); err != nil {
		return tenantErr(err)
	}
	c.Status(http.StatusNoContent)
	return nil
}

// tenantErr words a missing tenant for the client.
func tenantErr(err error) error {
	if errors.Is(err, models.ErrNotFound) {
		return notFound("no tenant of that name")
	}
	return err
}
