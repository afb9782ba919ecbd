package api

import "github.com/gin-gonic/gin"

// RoutesOf exposes the router's routes to the external tests.
func RoutesOf(s *Server) gin.RoutesInfo { return s.router.Routes() }
