// Package web serves the SMS dashboard: a static page that calls
// sms.NodeService from the browser (Connect protocol, @connectrpc/connect-web)
// and keeps a live table of the nodes through WatchNodes.
//
// The files in dist/ are built from web/ (TypeScript, bundled by esbuild) and
// committed, so the binary needs no build step: `cd web && npm ci && npm run
// build` regenerates them, and CI checks that it reproduces them exactly.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed dist
var dist embed.FS

// AssetsPrefix is the path under which Handler serves the page's assets
// (ui/app.js, ui/app.css); the page itself is served at "/".
const AssetsPrefix = "/ui/"

// csp lets the page load only its own files and call only its own origin.
const csp = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// Handler serves the dashboard: index.html at "/", app.js and app.css
// under AssetsPrefix, 404 for anything else. Mount it for "GET /{$}" and
// "GET /ui/".
func Handler() http.Handler {
	files, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded: cannot happen
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "index.html"
		if r.URL.Path != "/" {
			name = strings.TrimPrefix(r.URL.Path, AssetsPrefix)
			if name == r.URL.Path || name == "" || name == "index.html" || strings.Contains(name, "/") {
				http.NotFound(w, r)
				return
			}
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		// Embedded files carry no modification time: have browsers check
		// back, so a new binary's page is never mixed with old assets.
		h.Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, files, name)
	})
}
