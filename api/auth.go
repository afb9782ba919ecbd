package api

import (
	"errors"

	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/token"
)

const claimsKey = "tenantry.claims"

// authenticate verifies the bearer token; any failure is a 401. Two
// Authorization headers are refused: which one counts would depend on the
// reader.
func (s *Server) authenticate(c *gin.Context) {
	if len(c.Request.Header.Values("Authorization")) > 1 {
		s.fail(c, unauthorized(errors.New("more than one Authorization header")))
		return
	}
	claims, err := s.auth.Verify(c.GetHeader("Authorization"))
	if err != nil {
		s.fail(c, unauthorized(err))
		return
	}
	c.Set(claimsKey, claims)
	c.Next()
}

func claimsOf(c *gin.Context) *token.Claims {
	v, _ := c.Get(claimsKey)
	cl, _ := v.(*token.Claims)
	return cl
}

// requireAdmin lets only platform-admin tokens through.
func (s *Server) requireAdmin(c *gin.Context) {
	if cl := claimsOf(c); cl == nil || !cl.IsAdmin() {
		s.fail(c, forbidden("an admin token is required"))
		return
	}
	c.Next()
}
