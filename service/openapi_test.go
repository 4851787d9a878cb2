package service_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/spear-next/sms/service/apidocs"
)

// TestOpenAPIDocumentIsTrue checks the served OpenAPI document against the
// golden run of the gateway with kin-openapi: the document is valid OpenAPI
// 3; every response (status, Content-Type, body; response schemas forbid
// undocumented fields) is what the document says for its route; every
// request the server accepted is one the document allows; and the routing
// errors, which no route describes, have the document's Error shape.
func TestOpenAPIDocumentIsTrue(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, nil)
	resp, err := http.Get(e.url + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(served, apidocs.OpenAPI()) {
		t.Fatalf("GET /api/openapi.json: %d, %d bytes, err %v; want 200 and the embedded document", resp.StatusCode, len(served), err)
	}

	doc, err := openapi3.NewLoader().LoadFromData(served)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	if got, want := doc.Info.Title, "SPEAR Metadata Server API"; got != want {
		t.Errorf("info.title = %q, want %q", got, want)
	}

	exchanges := runGolden(t, openStore(t, "memory"))
	if len(exchanges) == 0 {
		t.Fatal("no golden exchanges")
	}
	doc.Servers = openapi3.Servers{{URL: strings.TrimSuffix(exchanges[0].req.URL.Scheme+"://"+exchanges[0].req.URL.Host, "/")}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	errorSchema := doc.Components.Schemas["Error"].Value
	routed := 0
	for _, ex := range exchanges {
		route, params, err := router.FindRoute(ex.req)
		// kin-openapi's router ignores a trailing slash; the server does
		// not, and no path of the document has one.
		if re := (*routers.RouteError)(nil); errors.As(err, &re) || strings.HasSuffix(ex.req.URL.Path, "/") {
			if ex.resp.StatusCode != http.StatusNotFound && ex.resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s: %s %s has no route in the document but answered %d", ex.step.name, ex.req.Method, ex.req.URL, ex.resp.StatusCode)
			}
			var body any
			if err := json.Unmarshal(ex.body, &body); err != nil {
				t.Fatalf("%s: %v", ex.step.name, err)
			}
			if err := errorSchema.VisitJSON(body); err != nil {
				t.Errorf("%s: routing error %s is not an Error: %v", ex.step.name, ex.body, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: FindRoute(%s %s): %v", ex.step.name, ex.req.Method, ex.req.URL, err)
		}
		routed++
		in := &openapi3filter.RequestValidationInput{
			Request:    ex.req,
			PathParams: params,
			Route:      route,
			Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		}
		if ex.resp.StatusCode < 300 {
			ex.req.Body = io.NopCloser(strings.NewReader(ex.reqBody))
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				t.Errorf("%s: the server accepted a request the document does not allow: %v", ex.step.name, err)
			}
		}
		err = openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in,
			Status:                 ex.resp.StatusCode,
			Header:                 ex.resp.Header,
			Body:                   io.NopCloser(bytes.NewReader(ex.body)),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		})
		if err != nil {
			t.Errorf("%s: %s %s -> %d %s: %v", ex.step.name, ex.req.Method, ex.req.URL.Path, ex.resp.StatusCode, ex.body, err)
		}
	}
	if routed < len(exchanges)-4 {
		t.Errorf("only %d of %d exchanges matched a route of the document", routed, len(exchanges))
	}
}
