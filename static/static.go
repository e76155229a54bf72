// Package static embeds the built CSS, the vendored htmx scripts and the icons,
// so the server binary serves them without the source tree.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"sync"
)

// FS holds every served asset, addressed as "css/app.css", "js/htmx.min.js", …
//
//go:embed css/app.css js/*.js favicon.svg
var FS embed.FS

var (
	hashOnce sync.Once
	hashes   map[string]string
)

// URL returns the public path of an asset with a content hash, so it can be
// cached for a year and still change on deploy.
func URL(name string) string {
	hashOnce.Do(func() {
		hashes = map[string]string{}
		fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := FS.ReadFile(p)
				sum := sha256.Sum256(b)
				hashes[p] = hex.EncodeToString(sum[:6])
			}
			return nil
		})
	})
	return "/static/" + name + "?v=" + hashes[name]
}
