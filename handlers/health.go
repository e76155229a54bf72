package handlers

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
)

// healthz answers while the process is up.
func (h *Handler) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz answers 200 only while the database answers within a second.
func (h *Handler) readyz(c *gin.Context) {
	if err := models.Ping(c.Request.Context(), h.db, time.Second); err != nil {
		logger(c).Warn("database not ready", "err", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "database": "unreachable"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "database": "ok"})
}
