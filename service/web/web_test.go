package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spear-next/sms/service/web"
)

func TestHandler(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", web.Handler())
	mux.Handle("GET "+web.AssetsPrefix, web.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, c := range []struct {
		path, wantType, wantBody string
		wantStatus               int
	}{
		{"/", "text/html", `src="ui/app.js"`, 200},
		{"/ui/app.js", "text/javascript", "listNodes", 200},
		{"/ui/app.css", "text/css", ".badge", 200},
		{"/ui/", "", "", 404},
		{"/ui/index.html", "", "", 404},
		{"/ui/nope.js", "", "", 404},
		{"/index.html", "", "", 404},
	} {
		t.Run(c.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + c.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if got := resp.StatusCode; got != c.wantStatus {
				t.Fatalf("status %d, want %d", got, c.wantStatus)
			}
			if c.wantStatus != 200 {
				return
			}
			if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, c.wantType) {
				t.Errorf("Content-Type = %q, want %s", got, c.wantType)
			}
			if !strings.Contains(string(body), c.wantBody) {
				t.Errorf("body does not contain %q", c.wantBody)
			}
			if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'self'") {
				t.Errorf("Content-Security-Policy = %q, want default-src 'self'", got)
			}
		})
	}
}
