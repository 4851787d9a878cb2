// Package apidocs serves the OpenAPI document of SPEAR's HTTP gateway and
// Swagger UI over it, both embedded in the binary.
//
// openapi.json is written by hand, route by route from SPEAR's contract; a
// test in package service validates every golden response of the gateway
// against it, so it cannot drift from what the server answers. swagger/ is
// built from web/ (`cd web && npm ci && npm run build` copies the pinned
// swagger-ui-dist package's bundle next to our page) and committed, like the
// dashboard; CI checks that the build reproduces it.
package apidocs

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed openapi.json
var openapi []byte

//go:embed swagger
var swagger embed.FS

// OpenAPIPath and SwaggerPrefix are where Handler serves the document and
// the UI.
const (
	OpenAPIPath   = "/api/openapi.json"
	SwaggerPrefix = "/swagger-ui/"
)

// OpenAPI returns the OpenAPI 3 document of the gateway, as JSON.
func OpenAPI() []byte { return append([]byte(nil), openapi...) }

// csp lets the page load only its own files and the document. Swagger UI
// sets inline styles and uses data: images.
const csp = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// Handler serves GET OpenAPIPath and GET SwaggerPrefix (index.html, its
// assets). Mount it for both; other paths are 404.
func Handler() http.Handler {
	files, err := fs.Sub(swagger, "swagger")
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		// Embedded files carry no modification time: have browsers check
		// back, so a new binary's page is never mixed with old assets.
		h.Set("Cache-Control", "no-cache")
		if r.URL.Path == OpenAPIPath {
			h.Set("Content-Type", "application/json")
			_, _ = w.Write(openapi)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, SwaggerPrefix)
		switch {
		case name == r.URL.Path, strings.Contains(name, "/"), name == "index.html":
			http.NotFound(w, r)
			return
		case name == "":
			name = "index.html"
		}
		h.Set("Content-Security-Policy", csp)
		http.ServeFileFS(w, r, files, name)
	})
}
