package handlers

import (
	"io/fs"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/static"
)

func (h *Handler) favicon(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=86400")
	c.FileFromFS("favicon.svg", http.FS(static.FS))
}

// serveStatic serves embedded assets; a request carrying the content hash
// (?v=) may be cached for a year.
func (h *Handler) serveStatic(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("path"), "/")
	if !fs.ValidPath(name) || strings.Contains(name, "..") {
		h.fail(c, errNotFound)
		return
	}
	if fi, err := fs.Stat(static.FS, name); err != nil || fi.IsDir() {
		h.fail(c, errNotFound)
		return
	}
	if c.Query("v") != "" {
		c.Header("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		c.Header("Cache-Control", "public, max-age=300")
	}
	c.FileFromFS(name, http.FS(static.FS))
}
