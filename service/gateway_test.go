package service_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/placement"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// The SPEAR HTTP gateway, route by route, as a golden table written from
// SPEAR's contract: each step is a request and the exact status and body it
// must get. The server runs on a fixed clock, so timestamps are exact; the
// uuids the server generates are captured by the step that creates them and
// written {n1}, {n2}, {d1} in later steps; /health's wall-clock timestamp is
// the only value normalised.

// t0 is the fixed server time of the golden tests: 2026-05-01T00:00:00Z.
var t0 = time.Unix(1777593600, 0).UTC()

// goldenStep is one request of the table.
type goldenStep struct {
	name            string
	method          string
	path            string
	contentType     string // "" with a body means application/json; "-" sends none
	contentEncoding string
	body            string
	wantStatus      int
	wantBody        string
	capture         map[string]string // placeholder -> top-level key of the answer
	advance         time.Duration     // moves the server clock before the request
}

const absentUUID = "00000000-0000-4000-8000-000000000000"

// node1 is {n1} as registered and never changed, in SPEAR's node JSON.
const node1 = `{"uuid":"{n1}","ip_address":"10.0.0.5","port":8080,"http_port":8081,"status":"active","last_heartbeat":1777593600,"registered_at":1777593600,"metadata":{"zone":"a"}}`

// res1 is the resource report the table stores for {n1}.
const res1Body = `{"cpu_usage_percent":40,"memory_usage_percent":20,"disk_usage_percent":10,"load_average_1m":4,"load_average_5m":3.5,"load_average_15m":37.123456789012344,"total_memory_bytes":17179869184,"used_memory_bytes":9223372036854775807,"available_memory_bytes":1,"total_disk_bytes":2,"used_disk_bytes":3,"network_rx_bytes_per_sec":4,"network_tx_bytes_per_sec":5,"resource_metadata":{"gpu":"none"}}`
const res1Fields = `"cpu_usage_percent":40,"memory_usage_percent":20,"total_memory_bytes":17179869184,"used_memory_bytes":9223372036854775807,"available_memory_bytes":1,"disk_usage_percent":10,"total_disk_bytes":2,"used_disk_bytes":3,"network_rx_bytes_per_sec":4,"network_tx_bytes_per_sec":5,"load_average_1m":4,"load_average_5m":3.5,"load_average_15m":37.123456789012344,"updated_at":1777593600,"resource_metadata":{"gpu":"none"}`
const res1 = `{"node_uuid":"{n1}",` + res1Fields + `}`

var goldenSteps = []goldenStep{
	// POST /api/v1/nodes
	{name: "register", method: "POST", path: "/api/v1/nodes",
		body:       `{"ip_address":"10.0.0.5","port":8080,"http_port":8081,"metadata":{"zone":"a"}}`,
		wantStatus: 201, wantBody: `{"success":true,"message":"Node registered successfully","node_uuid":"{n1}"}`,
		capture: map[string]string{"{n1}": "node_uuid"}},
	{name: "register missing port", method: "POST", path: "/api/v1/nodes", body: `{"ip_address":"10.0.0.5"}`,
		wantStatus: 422, wantBody: `{"success":false,"message":"port: required"}`},
	{name: "register missing ip_address", method: "POST", path: "/api/v1/nodes", body: `{"port":1}`,
		wantStatus: 422, wantBody: `{"success":false,"message":"ip_address: required"}`},
	{name: "register port of the wrong type", method: "POST", path: "/api/v1/nodes", body: `{"ip_address":"10.0.0.5","port":"80"}`,
		wantStatus: 422, wantBody: `{"success":false,"message":"port: want a JSON integer, got string"}`},
	{name: "register rejected port", method: "POST", path: "/api/v1/nodes", body: `{"ip_address":"10.0.0.5","port":0}`,
		wantStatus: 400, wantBody: `{"success":false,"message":"node.port: must be 1..65535, got 0"}`},
	{name: "register port beyond int32", method: "POST", path: "/api/v1/nodes", body: `{"ip_address":"10.0.0.5","port":4294967376}`,
		wantStatus: 400, wantBody: `{"success":false,"message":"node.port: must be 1..65535, got 4294967376"}`},
	{name: "register rejected address", method: "POST", path: "/api/v1/nodes", body: `{"ip_address":"not an address","port":1}`,
		wantStatus: 400, wantBody: `{"success":false,"message":"node.ip_address: must be an IP address or a host name, got \"not an address\""}`},
	{name: "register bad JSON", method: "POST", path: "/api/v1/nodes", body: `{"ip_address":`,
		wantStatus: 400, wantBody: `{"success":false,"message":"request body is not valid JSON"}`},
	{name: "register form body", method: "POST", path: "/api/v1/nodes", contentType: "application/x-www-form-urlencoded",
		body:       `{"ip_address":"10.0.0.5","port":1}`,
		wantStatus: 415, wantBody: `{"success":false,"message":"Content-Type must be application/json, got \"application/x-www-form-urlencoded\""}`},
	{name: "register text body", method: "POST", path: "/api/v1/nodes", contentType: "text/plain", body: `{}`,
		wantStatus: 415, wantBody: `{"success":false,"message":"Content-Type must be application/json, got \"text/plain\""}`},
	{name: "register body without Content-Type", method: "POST", path: "/api/v1/nodes", contentType: "-", body: `{}`,
		wantStatus: 415, wantBody: `{"success":false,"message":"Content-Type must be application/json, got \"\""}`},
	// The request policy inflates gzip bodies before the gateway (and
	// refuses other codings); a body that says gzip but is not is 400.
	{name: "register brotli body", method: "POST", path: "/api/v1/nodes", contentEncoding: "br", body: `{}`,
		wantStatus: 415, wantBody: `{"success":false,"message":"request body: content coding \"br\" is not supported (use gzip or none)"}`},
	{name: "register corrupt gzip body", method: "POST", path: "/api/v1/nodes", contentEncoding: "gzip", body: `{}`,
		wantStatus: 400, wantBody: `{"success":false,"message":"request body: gzip: unexpected EOF"}`},
	{name: "register with charset", method: "POST", path: "/api/v1/nodes", contentType: "application/json; charset=utf-8",
		body:       `{"ip_address":"10.0.0.6","port":9000}`,
		wantStatus: 201, wantBody: `{"success":true,"message":"Node registered successfully","node_uuid":"{n2}"}`,
		capture: map[string]string{"{n2}": "node_uuid"}},
	{name: "register with a query parameter", method: "POST", path: "/api/v1/nodes?force=1", body: `{}`,
		wantStatus: 400, wantBody: `{"success":false,"message":"unknown query parameter \"force\"; this route takes none"}`},

	// GET /api/v1/nodes
	{name: "list", method: "GET", path: "/api/v1/nodes",
		wantStatus: 200, wantBody: `{"success":true,"nodes":[{sorted n1 n2}]}`},
	{name: "list active", method: "GET", path: "/api/v1/nodes?status=active",
		wantStatus: 200, wantBody: `{"success":true,"nodes":[{sorted n1 n2}]}`},
	{name: "list online (SPEAR's word for active)", method: "GET", path: "/api/v1/nodes?status=online",
		wantStatus: 200, wantBody: `{"success":true,"nodes":[{sorted n1 n2}]}`},
	{name: "list inactive", method: "GET", path: "/api/v1/nodes?status=inactive",
		wantStatus: 200, wantBody: `{"success":true,"nodes":[]}`},
	{name: "list empty status is all", method: "GET", path: "/api/v1/nodes?status=",
		wantStatus: 200, wantBody: `{"success":true,"nodes":[{sorted n1 n2}]}`},
	{name: "list unknown status", method: "GET", path: "/api/v1/nodes?status=bogus",
		wantStatus: 400, wantBody: `{"success":false,"error":"query parameter \"status\": unknown status \"bogus\"; want active, inactive, unhealthy, decommissioning, online or offline"}`},
	{name: "list unknown parameter", method: "GET", path: "/api/v1/nodes?status_filter=active",
		wantStatus: 400, wantBody: `{"success":false,"error":"unknown query parameter \"status_filter\"; this route takes status"}`},
	{name: "list repeated parameter", method: "GET", path: "/api/v1/nodes?status=active&status=inactive",
		wantStatus: 400, wantBody: `{"success":false,"error":"query parameter \"status\" given 2 times; give it once"}`},
	{name: "list malformed query", method: "GET", path: "/api/v1/nodes?status=%zz",
		wantStatus: 400, wantBody: `{"success":false,"error":"malformed query string: invalid URL escape \"%zz\""}`},

	// GET /api/v1/nodes/{uuid}, in every spelling of the uuid
	{name: "get", method: "GET", path: "/api/v1/nodes/{n1}",
		wantStatus: 200, wantBody: `{"success":true,"node":` + node1 + `}`},
	{name: "get upper case", method: "GET", path: "/api/v1/nodes/{N1}",
		wantStatus: 200, wantBody: `{"success":true,"node":` + node1 + `}`},
	{name: "get urn:uuid:", method: "GET", path: "/api/v1/nodes/urn:uuid:{n1}",
		wantStatus: 200, wantBody: `{"success":true,"node":` + node1 + `}`},
	{name: "get braces", method: "GET", path: "/api/v1/nodes/%7B{n1}%7D",
		wantStatus: 200, wantBody: `{"success":true,"node":` + node1 + `}`},
	{name: "get 32 hex digits", method: "GET", path: "/api/v1/nodes/{n1 hex}",
		wantStatus: 200, wantBody: `{"success":true,"node":` + node1 + `}`},
	{name: "get absent", method: "GET", path: "/api/v1/nodes/" + absentUUID,
		wantStatus: 404, wantBody: `{"success":false,"error":"Node not found"}`},
	{name: "get not a uuid", method: "GET", path: "/api/v1/nodes/nope",
		wantStatus: 400, wantBody: `{"success":false,"error":"uuid: not a UUID: \"nope\""}`},
	{name: "get with a query parameter", method: "GET", path: "/api/v1/nodes/{n1}?access_token=x",
		wantStatus: 400, wantBody: `{"success":false,"error":"unknown query parameter \"access_token\"; this route takes none"}`},

	// PUT /api/v1/nodes/{uuid}: a partial merge
	{name: "update port only", method: "PUT", path: "/api/v1/nodes/{n2}", body: `{"port":9001}`,
		wantStatus: 200, wantBody: `{"success":true,"message":"Node updated successfully"}`},
	{name: "update kept the other fields", method: "GET", path: "/api/v1/nodes/{n2}",
		wantStatus: 200, wantBody: `{"success":true,"node":{"uuid":"{n2}","ip_address":"10.0.0.6","port":9001,"http_port":0,"status":"active","last_heartbeat":1777593600,"registered_at":1777593600,"metadata":{}}}`},
	{name: "update status and metadata", method: "PUT", path: "/api/v1/nodes/{n2}",
		body: `{"status":"offline","metadata":{"rack":"r2"},"http_port":9002}`, advance: time.Second,
		wantStatus: 200, wantBody: `{"success":true,"message":"Node updated successfully"}`},
	{name: "update replaced metadata, read offline as inactive", method: "GET", path: "/api/v1/nodes/{n2}",
		wantStatus: 200, wantBody: `{"success":true,"node":{"uuid":"{n2}","ip_address":"10.0.0.6","port":9001,"http_port":9002,"status":"inactive","last_heartbeat":1777593600,"registered_at":1777593600,"metadata":{"rack":"r2"}}}`},
	{name: "list inactive finds it", method: "GET", path: "/api/v1/nodes?status=offline",
		wantStatus: 200, wantBody: `{"success":true,"nodes":[{"uuid":"{n2}","ip_address":"10.0.0.6","port":9001,"http_port":9002,"status":"inactive","last_heartbeat":1777593600,"registered_at":1777593600,"metadata":{"rack":"r2"}}]}`},
	{name: "update back to active", method: "PUT", path: "/api/v1/nodes/{n2}", body: `{"status":"online"}`,
		wantStatus: 200, wantBody: `{"success":true,"message":"Node updated successfully"}`},
	{name: "update rejected port", method: "PUT", path: "/api/v1/nodes/{n2}", body: `{"port":70000}`,
		wantStatus: 400, wantBody: `{"success":false,"error":"node.port: must be 1..65535, got 70000"}`},
	{name: "update unknown status", method: "PUT", path: "/api/v1/nodes/{n2}", body: `{"status":"sleeping"}`,
		wantStatus: 400, wantBody: `{"success":false,"error":"node.status: unknown status \"sleeping\"; want active, inactive, unhealthy, decommissioning, online or offline"}`},
	{name: "update absent", method: "PUT", path: "/api/v1/nodes/" + absentUUID, body: `{"port":1}`,
		wantStatus: 404, wantBody: `{"success":false,"error":"Node not found"}`},
	{name: "update not a uuid", method: "PUT", path: "/api/v1/nodes/nope", body: `{"port":1}`,
		wantStatus: 400, wantBody: `{"success":false,"error":"uuid: not a UUID: \"nope\""}`},
	{name: "update form body", method: "PUT", path: "/api/v1/nodes/{n2}", contentType: "application/x-www-form-urlencoded", body: `port=1`,
		wantStatus: 415, wantBody: `{"success":false,"error":"Content-Type must be application/json, got \"application/x-www-form-urlencoded\""}`},

	// POST /api/v1/nodes/{uuid}/heartbeat
	{name: "heartbeat", method: "POST", path: "/api/v1/nodes/{n2}/heartbeat", body: `{"health_info":{"disk":"ok"}}`, advance: time.Second,
		wantStatus: 200, wantBody: `{"success":true,"message":"Heartbeat received"}`},
	{name: "heartbeat without a body", method: "POST", path: "/api/v1/nodes/{n2}/heartbeat", contentType: "-",
		wantStatus: 200, wantBody: `{"success":true,"message":"Heartbeat received"}`},
	{name: "heartbeat moved last_heartbeat", method: "GET", path: "/api/v1/nodes/{n2}",
		wantStatus: 200, wantBody: `{"success":true,"node":{"uuid":"{n2}","ip_address":"10.0.0.6","port":9001,"http_port":9002,"status":"active","last_heartbeat":1777593602,"registered_at":1777593600,"metadata":{"rack":"r2"}}}`},
	{name: "heartbeat absent", method: "POST", path: "/api/v1/nodes/" + absentUUID + "/heartbeat", body: `{}`,
		wantStatus: 404, wantBody: `{"success":false,"error":"Node not found"}`},
	{name: "heartbeat health_info of the wrong type", method: "POST", path: "/api/v1/nodes/{n2}/heartbeat", body: `{"health_info":[]}`,
		wantStatus: 422, wantBody: `{"success":false,"error":"health_info: want a JSON object, got array"}`},

	// PUT and GET /api/v1/nodes/{uuid}/resource
	{name: "resource put", method: "PUT", path: "/api/v1/nodes/{n1}/resource", body: res1Body, advance: -2 * time.Second,
		wantStatus: 200, wantBody: `{"success":true,"message":"Resource updated successfully"}`},
	{name: "resource get: full precision", method: "GET", path: "/api/v1/nodes/{n1}/resource",
		wantStatus: 200, wantBody: res1},
	{name: "resource put of an absent node", method: "PUT", path: "/api/v1/nodes/" + absentUUID + "/resource", body: `{}`,
		wantStatus: 404, wantBody: `{"success":false,"error":"Node not found"}`},
	{name: "resource counter above int64", method: "PUT", path: "/api/v1/nodes/{n1}/resource", body: `{"used_disk_bytes":9223372036854775808}`,
		wantStatus: 400, wantBody: `{"success":false,"error":"resource.used_disk_bytes: must be at most 9223372036854775807, got 9223372036854775808"}`},
	{name: "resource negative counter", method: "PUT", path: "/api/v1/nodes/{n1}/resource", body: `{"used_disk_bytes":-1}`,
		wantStatus: 422, wantBody: `{"success":false,"error":"used_disk_bytes: want a JSON integer, got number -1"}`},
	{name: "resource percentage above 100", method: "PUT", path: "/api/v1/nodes/{n1}/resource", body: `{"cpu_usage_percent":100.5}`,
		wantStatus: 400, wantBody: `{"success":false,"error":"resource.cpu_usage_percent: must be a finite number in [0, 100], got 100.5"}`},
	{name: "resource get without a report", method: "GET", path: "/api/v1/nodes/{n2}/resource",
		wantStatus: 404, wantBody: `{"success":false,"error":"Resource not found"}`},
	{name: "resource get not a uuid", method: "GET", path: "/api/v1/nodes/nope/resource",
		wantStatus: 400, wantBody: `{"success":false,"error":"node_uuid: not a UUID: \"nope\""}`},

	// GET /api/v1/resources
	{name: "resources", method: "GET", path: "/api/v1/resources",
		wantStatus: 200, wantBody: `{"resources":[` + res1 + `]}`},
	{name: "resources listed, comma-separated and trimmed", method: "GET", path: "/api/v1/resources?node_uuids={n2},%20{n1}%20," + absentUUID,
		wantStatus: 200, wantBody: `{"resources":[` + res1 + `]}`},
	{name: "resources bad uuid", method: "GET", path: "/api/v1/resources?node_uuids={n1},nope",
		wantStatus: 400, wantBody: `{"success":false,"error":"query parameter \"node_uuids\": entry 1: not a UUID: \"nope\""}`},
	{name: "resources unknown parameter", method: "GET", path: "/api/v1/resources?node_uuid={n1}",
		wantStatus: 400, wantBody: `{"success":false,"error":"unknown query parameter \"node_uuid\"; this route takes node_uuids"}`},

	// GET /api/v1/nodes/{uuid}/with-resource
	{name: "with-resource", method: "GET", path: "/api/v1/nodes/{n1}/with-resource",
		wantStatus: 200, wantBody: `{"uuid":"{n1}","ip_address":"10.0.0.5","port":8080,"http_port":8081,"status":"active","metadata":{"zone":"a"},"registered_at":1777593600,"last_heartbeat":1777593600,"resource":{` + res1Fields + `}}`},
	{name: "with-resource without a report", method: "GET", path: "/api/v1/nodes/{n2}/with-resource",
		wantStatus: 200, wantBody: `{"uuid":"{n2}","ip_address":"10.0.0.6","port":9001,"http_port":9002,"status":"active","metadata":{"rack":"r2"},"registered_at":1777593600,"last_heartbeat":1777593602}`},
	{name: "with-resource absent", method: "GET", path: "/api/v1/nodes/" + absentUUID + "/with-resource",
		wantStatus: 404, wantBody: `{"success":false,"error":"Node not found"}`},

	// The placement routes. {n2} is idle, {n1} scores
	// 100 - 0.5·40 - 0.3·20 - 0.1·10 - 10·4/16 = 70.5.
	{name: "place", method: "POST", path: "/api/v1/placement/invocations/place", body: `{"request_id":"r1","task_id":"t1"}`,
		wantStatus: 200, wantBody: `{"decision_id":"{d1}","candidates":[{"node_uuid":"{n2}","ip_address":"10.0.0.6","port":9001,"score":100},{"node_uuid":"{n1}","ip_address":"10.0.0.5","port":8080,"score":70.5}]}`,
		capture: map[string]string{"{d1}": "decision_id"}},
	{name: "place by labels", method: "POST", path: "/api/v1/placement/invocations/place", body: `{"request_id":"r1","task_id":"t1","max_candidates":5,"labels":{"zone":"a"}}`,
		wantStatus: 200, wantBody: `{"decision_id":"{d2}","candidates":[{"node_uuid":"{n1}","ip_address":"10.0.0.5","port":8080,"score":70.5}]}`,
		capture: map[string]string{"{d2}": "decision_id"}},
	{name: "place without task_id", method: "POST", path: "/api/v1/placement/invocations/place", body: `{"request_id":"r1"}`,
		wantStatus: 400, wantBody: `{"success":false,"error":"task_id: required"}`},
	{name: "report a timeout", method: "POST", path: "/api/v1/placement/invocations/report-outcome",
		body:       `{"decision_id":"{d1}","request_id":"r1","task_id":"t1","node_uuid":"{n2}","outcome_class":"INVOCATION_OUTCOME_CLASS_TIMEOUT","error_message":"deadline"}`,
		wantStatus: 200, wantBody: `{"accepted":true}`},
	{name: "the blocked node is left out", method: "POST", path: "/api/v1/placement/invocations/place", body: `{"request_id":"r2","task_id":"t1","max_candidates":1}`,
		wantStatus: 200, wantBody: `{"decision_id":"{d3}","candidates":[{"node_uuid":"{n1}","ip_address":"10.0.0.5","port":8080,"score":70.5}]}`,
		capture: map[string]string{"{d3}": "decision_id"}},
	{name: "report a success by number", method: "POST", path: "/api/v1/placement/invocations/report-outcome",
		body:       `{"decision_id":"{d3}","request_id":"r2","task_id":"t1","node_uuid":"{n2}","outcome_class":1}`,
		wantStatus: 200, wantBody: `{"accepted":true}`},
	{name: "the cleared node is back", method: "POST", path: "/api/v1/placement/invocations/place", body: `{"request_id":"r3","task_id":"t1","max_candidates":1}`,
		wantStatus: 200, wantBody: `{"decision_id":"{d4}","candidates":[{"node_uuid":"{n2}","ip_address":"10.0.0.6","port":9001,"score":100}]}`,
		capture: map[string]string{"{d4}": "decision_id"}},
	{name: "report without node_uuid", method: "POST", path: "/api/v1/placement/invocations/report-outcome",
		body:       `{"decision_id":"{d1}","request_id":"r1","task_id":"t1","outcome_class":"TIMEOUT"}`,
		wantStatus: 400, wantBody: `{"success":false,"error":"node_uuid: required"}`},
	{name: "report unknown outcome", method: "POST", path: "/api/v1/placement/invocations/report-outcome",
		body:       `{"decision_id":"{d1}","request_id":"r1","task_id":"t1","node_uuid":"{n2}","outcome_class":"LATE"}`,
		wantStatus: 422, wantBody: `{"success":false,"error":"request body: outcome_class: unknown outcome \"LATE\"; want SUCCESS, OVERLOADED, UNAVAILABLE, TIMEOUT, REJECTED, BAD_REQUEST, INTERNAL or UNKNOWN"}`},

	// DELETE /api/v1/nodes/{uuid}
	{name: "delete", method: "DELETE", path: "/api/v1/nodes/{n2}",
		wantStatus: 200, wantBody: `{"success":true,"message":"Node deleted successfully"}`},
	{name: "get after delete", method: "GET", path: "/api/v1/nodes/{n2}",
		wantStatus: 404, wantBody: `{"success":false,"error":"Node not found"}`},
	{name: "delete again", method: "DELETE", path: "/api/v1/nodes/{n2}",
		wantStatus: 404, wantBody: `{"success":false,"error":"Node not found"}`},
	{name: "delete not a uuid", method: "DELETE", path: "/api/v1/nodes/nope",
		wantStatus: 400, wantBody: `{"success":false,"error":"uuid: not a UUID: \"nope\""}`},

	// Routing errors are JSON too.
	{name: "method not allowed", method: "PATCH", path: "/api/v1/nodes/{n1}", body: `{}`,
		wantStatus: 405, wantBody: `{"success":false,"error":"method PATCH not allowed on /api/v1/nodes/{n1}; allowed: DELETE, GET, HEAD, PUT"}`},
	{name: "POST resource is not a route", method: "POST", path: "/api/v1/nodes/{n1}/resource", body: `{}`,
		wantStatus: 405, wantBody: `{"success":false,"error":"method POST not allowed on /api/v1/nodes/{n1}/resource; allowed: GET, HEAD, PUT"}`},
	{name: "unknown route", method: "GET", path: "/api/v1/nope",
		wantStatus: 404, wantBody: `{"success":false,"error":"no route for GET /api/v1/nope"}`},
	{name: "trailing slash", method: "GET", path: "/api/v1/nodes/",
		wantStatus: 404, wantBody: `{"success":false,"error":"no route for GET /api/v1/nodes/"}`},

	// GET /health
	{name: "health", method: "GET", path: "/health",
		wantStatus: 200, wantBody: `{"status":"healthy","timestamp":"<now>","service":"sms"}`},
}

// gatewayEnv starts a server over store whose registries and placer run on
// a fake clock at t0.
func gatewayEnv(t *testing.T, store sqlkv.Store) (*env, *testutil.Clock) {
	t.Helper()
	clock := testutil.NewClock(t0)
	e := newEnv(t, store, connectHTTP, func(c *service.Config) {
		view := registry.NewView(store, registry.WithClock(clock.Now))
		t.Cleanup(view.Close)
		_ = view.WaitLoaded(t.Context())
		c.Nodes, c.Resources = view.Nodes(), view.Resources()
		c.Placer = placement.New(store, c.Nodes, c.Resources, placement.Options{Now: clock.Now})
	})
	return e, clock
}

// gatewayExchange is one request of a golden run and what it got.
type gatewayExchange struct {
	step    goldenStep
	req     *http.Request
	reqBody string
	resp    *http.Response
	body    []byte
}

func TestGatewayGolden(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			runGolden(t, openStore(t, backend))
		})
	}
}

var nowTimestamp = regexp.MustCompile(`"timestamp":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"`)

// runGolden runs goldenSteps in order against a fresh server over store and
// returns every exchange, for the OpenAPI check.
func runGolden(t *testing.T, store sqlkv.Store) []gatewayExchange {
	t.Helper()
	e, clock := gatewayEnv(t, store)
	vars := map[string]string{}
	expand := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, k, v)
		}
		return s
	}
	var out []gatewayExchange
	for _, st := range goldenSteps {
		clock.Advance(st.advance)
		var body io.Reader
		reqBody := expand(st.body)
		if st.body != "" {
			body = strings.NewReader(reqBody)
		}
		req, err := http.NewRequestWithContext(t.Context(), st.method, e.url+expand(st.path), body)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.contentEncoding != "" {
			req.Header.Set("Content-Encoding", st.contentEncoding)
		}
		switch st.contentType {
		case "":
			if st.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
		case "-":
		default:
			req.Header.Set("Content-Type", st.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: read body: %v", st.name, err)
		}
		for placeholder, key := range st.capture {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("%s: %s is not a JSON object: %v", st.name, raw, err)
			}
			v, _ := m[key].(string)
			if len(v) != 36 {
				t.Fatalf("%s: %s = %v, want a uuid (body %s)", st.name, key, m[key], raw)
			}
			setUUIDVars(vars, placeholder, v)
		}
		got := nowTimestamp.ReplaceAllString(string(raw), `"timestamp":"<now>"`)
		if resp.StatusCode != st.wantStatus || got != expand(st.wantBody) {
			t.Errorf("%s: %s %s\n got %d %s\nwant %d %s", st.name, st.method, expand(st.path),
				resp.StatusCode, got, st.wantStatus, expand(st.wantBody))
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", st.name, ct)
		}
		out = append(out, gatewayExchange{step: st, req: req, reqBody: reqBody, resp: resp, body: raw})
	}
	return out
}

// setUUIDVars defines placeholder (e.g. {n1}) as id, with its other
// spellings: {N1} upper case and {n1 hex} 32 hex digits; and, once {n1} and
// {n2} exist, {sorted n1 n2}: both nodes' JSON as first registered, in uuid
// order.
func setUUIDVars(vars map[string]string, placeholder, id string) {
	name := strings.Trim(placeholder, "{}")
	vars[placeholder] = id
	vars["{"+strings.ToUpper(name)+"}"] = strings.ToUpper(id)
	vars["{"+name+" hex}"] = strings.ReplaceAll(id, "-", "")
	if n1, n2 := vars["{n1}"], vars["{n2}"]; n1 != "" && n2 != "" {
		a := strings.ReplaceAll(node1, "{n1}", n1)
		b := `{"uuid":"` + n2 + `","ip_address":"10.0.0.6","port":9000,"http_port":0,"status":"active","last_heartbeat":1777593600,"registered_at":1777593600,"metadata":{}}`
		if n2 < n1 {
			a, b = b, a
		}
		vars["{sorted n1 n2}"] = a + "," + b
	}
}
