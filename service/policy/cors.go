package policy

import (
	"net/http"
	"slices"

	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"
)

// corsPolicy is cross-origin access for browsers: refused unless origins
// are configured, then what Connect, gRPC-web and REST clients need
// (connectrpc.com/cors's lists, plus Authorization and the REST methods)
// for those origins only.
type corsPolicy struct {
	origins []string
	cors    *cors.Cors // nil when disabled
}

func newCORS(origins []string) *corsPolicy {
	c := &corsPolicy{origins: origins}
	if len(origins) == 0 {
		return c
	}
	c.cors = cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: append(connectcors.AllowedMethods(), http.MethodPut, http.MethodDelete),
		AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization", "Connect-Content-Encoding", "Connect-Accept-Encoding", "Grpc-Accept-Encoding"),
		ExposedHeaders: append(connectcors.ExposedHeaders(), "WWW-Authenticate"),
		MaxAge:         7200, // seconds; the cap Chromium applies
	})
	return c
}

// wrap answers preflights: with 403 and a reason when the origin is not
// allowed (rs/cors would answer 204 without CORS headers, which a browser
// refuses too, but says nothing to the operator reading the network tab),
// else with the CORS headers; actual requests from an allowed origin get
// their CORS headers too.
func (c *corsPolicy) wrap(next http.Handler) http.Handler {
	var allowed http.Handler = next
	if c.cors != nil {
		allowed = c.cors.Handler(next)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		preflight := r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != ""
		if preflight && !c.allows(origin) {
			msg := "cross-origin requests are disabled; start sms with --cors-allow-origin " + origin + " to allow this origin\n"
			if c.cors != nil {
				msg = "origin " + origin + " is not in --cors-allow-origin\n"
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(msg))
			return
		}
		allowed.ServeHTTP(w, r)
	})
}

func (c *corsPolicy) allows(origin string) bool {
	return slices.Contains(c.origins, "*") || slices.Contains(c.origins, origin)
}
