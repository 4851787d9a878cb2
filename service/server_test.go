package service_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/reflect/protoreflect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/memory"
)

func TestOversizedRequest(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		big := strings.Repeat("x", 5<<20) // above the 4 MiB default
		_, err := e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{
			IpAddress: "10.0.0.1", Port: 1, Metadata: map[string]string{"blob": big}}})
		wantCode(t, err, connect.CodeResourceExhausted)

		// The connection stays usable.
		e.register(t, nodeA, "")
	})
}

func TestMaxRequestBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, func(c *service.Config) { c.MaxRequestBytes = 1024 })
	_, err := e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{
		IpAddress: "10.0.0.1", Port: 1, Metadata: map[string]string{"k": strings.Repeat("x", 2048)}}})
	wantCode(t, err, connect.CodeResourceExhausted)
	e.register(t, nodeA, "")
}

func TestStoreClosed(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		e.register(t, nodeA, "")
		if err := e.store.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		_, err := e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: nodeA})
		wantCode(t, err, connect.CodeUnavailable)
		_, err = e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1}})
		wantCode(t, err, connect.CodeUnavailable)
		_, err = e.client.ListNodes(t.Context(), &smspb.ListNodesRequest{})
		wantCode(t, err, connect.CodeUnavailable)
		_, err = e.client.GetNodeResource(t.Context(), &smspb.GetNodeResourceRequest{NodeUuid: nodeA})
		wantCode(t, err, connect.CodeUnavailable)
	})
}

// failingStore fails every read and write with an error carrying text that
// must not reach clients.
type failingStore struct{ sqlkv.Store }

var errSecret = errors.New(`pq: relation "kv" does not exist (host 10.9.8.7)`)

func (failingStore) Get(context.Context, []byte) (sqlkv.Entry, error) {
	return sqlkv.Entry{}, errSecret
}
func (failingStore) Put(context.Context, []byte, []byte) (int64, error)   { return 0, errSecret }
func (failingStore) Count(context.Context, []byte) (int64, error)         { return 0, errSecret }
func (failingStore) BatchPut(context.Context, []sqlkv.Entry) error        { return errSecret }
func (failingStore) DeletePrefix(context.Context, []byte) (int64, error)  { return 0, errSecret }
func (failingStore) BatchDelete(context.Context, [][]byte) (int64, error) { return 0, errSecret }
func (failingStore) Range(context.Context, sqlkv.RangeOptions) ([]sqlkv.Entry, error) {
	return nil, errSecret
}
func (failingStore) Apply(context.Context, ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	return nil, errSecret
}

func TestUnknownErrorIsBareInternal(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, failingStore{memory.New()}, p, nil)
			calls := map[string]func() error{
				"GetNode": func() error {
					_, err := e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: nodeA})
					return err
				},
				"RegisterNode": func() error {
					_, err := e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1}})
					return err
				},
				"ListNodes": func() error {
					_, err := e.client.ListNodes(t.Context(), &smspb.ListNodesRequest{})
					return err
				},
			}
			for name, call := range calls {
				err := call()
				wantCode(t, err, connect.CodeInternal)
				if msg := err.Error(); strings.Contains(msg, "10.9.8.7") || strings.Contains(msg, "relation") {
					t.Errorf("%s error %q leaks the store's text", name, msg)
				}
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		health := grpchealth.NewClient(e.http, e.rpcURL, e.opts...)
		check := func(service string) (grpchealth.Status, error) {
			resp, err := health.Check(t.Context(), &grpchealth.CheckRequest{Service: service})
			if err != nil {
				return 0, err
			}
			return resp.Status, nil
		}
		for _, svc := range []string{"", "sms.NodeService", "sms.PlacementService"} {
			if got := must(check(svc))(t); got != grpchealth.StatusServing {
				t.Errorf("Check(%q) = %v, want SERVING", svc, got)
			}
		}
		_, err := check("sms.Unknown")
		wantCode(t, err, connect.CodeNotFound)
		if got, want := getHealthz(t, e), http.StatusOK; got != want {
			t.Errorf("GET /healthz = %d, want %d", got, want)
		}

		if err := e.store.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for _, svc := range []string{"", "sms.NodeService", "sms.PlacementService"} {
			if got := must(check(svc))(t); got != grpchealth.StatusNotServing {
				t.Errorf("after Close: Check(%q) = %v, want NOT_SERVING", svc, got)
			}
		}
		if got, want := getHealthz(t, e), http.StatusServiceUnavailable; got != want {
			t.Errorf("after Close: GET /healthz = %d, want %d", got, want)
		}
	})
}

// getHealthz returns the status of GET /healthz, checking the body matches.
func getHealthz(t *testing.T, e *env) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("GET /healthz body = %q, want \"ok\"", body)
	}
	return resp.StatusCode
}

func TestHealthzMethod(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, nil)
	resp, err := http.Post(e.url+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusMethodNotAllowed; got != want {
		t.Errorf("POST /healthz = %d, want %d", got, want)
	}
}

func TestReflection(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		stream := grpcreflect.NewClient(e.http, e.rpcURL, e.opts...).NewStream(t.Context())
		t.Cleanup(func() { _, _ = stream.Close() })
		services := must(stream.ListServices())(t)
		for _, want := range []protoreflect.FullName{"sms.NodeService", "grpc.health.v1.Health"} {
			if !slices.Contains(services, want) {
				t.Errorf("ListServices = %v, want it to include %s", services, want)
			}
		}
		files := must(stream.FileContainingSymbol("sms.NodeService"))(t)
		if len(files) == 0 || files[0].GetName() != "sms/node.proto" {
			t.Errorf("FileContainingSymbol(sms.NodeService) = %d files, want sms/node.proto first", len(files))
		}
	})

	// v1alpha, which older tools still use, has the same messages as v1;
	// ask it to list services with a hand-made Connect streaming request:
	// one envelope holding list_services (field 7) = "".
	t.Run("v1alpha", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, openStore(t, "memory"), connectHTTP, nil)
		msg := []byte{7<<3 | 2, 0}
		body := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
		body = append(body, msg...)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
			e.url+"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/connect+proto")
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(got, []byte("sms.NodeService")) {
			t.Errorf("v1alpha reflection: status %d, body %q; want 200 listing sms.NodeService", resp.StatusCode, got)
		}
	})
}

func TestAuth(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token"
	withToken := func(value string) connect.ClientOption {
		return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
			return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
				req.Header().Set("Authorization", value)
				return next(ctx, req)
			}
		}))
	}
	for _, p := range protocols {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			var logs testutil.SyncBuffer
			e := newEnv(t, openStore(t, "memory"), p, func(c *service.Config) {
				c.AuthToken = token
				c.Logger = slogTo(&logs)
			})
			client := func(header string) func() error {
				p := p
				if header != "" {
					p.Opts = append(slices.Clone(p.Opts), withToken(header))
				}
				c := newClient(e, p)
				return func() error {
					_, err := c.ListNodes(t.Context(), &smspb.ListNodesRequest{})
					return err
				}
			}

			wantCode(t, client("")(), connect.CodeUnauthenticated)
			wantCode(t, client("Bearer wrong")(), connect.CodeUnauthenticated)
			wantCode(t, client("Bearer "+token+"x")(), connect.CodeUnauthenticated)
			wantCode(t, client("Basic "+token)(), connect.CodeUnauthenticated)
			if err := client("Bearer " + token)(); err != nil {
				t.Errorf("right token: %v", err)
			}
			if err := client("bearer " + token)(); err != nil {
				t.Errorf("right token, lower-case scheme: %v", err)
			}

			// Health, reflection and /healthz stay open.
			health := grpchealth.NewClient(e.http, e.rpcURL, p.Opts...)
			if _, err := health.Check(t.Context(), &grpchealth.CheckRequest{}); err != nil {
				t.Errorf("health check without a token: %v", err)
			}
			stream := grpcreflect.NewClient(e.http, e.rpcURL, p.Opts...).NewStream(t.Context())
			if _, err := stream.ListServices(); err != nil {
				t.Errorf("reflection without a token: %v", err)
			}
			_, _ = stream.Close()
			if got, want := getHealthz(t, e), http.StatusOK; got != want {
				t.Errorf("GET /healthz without a token = %d, want %d", got, want)
			}

			if strings.Contains(logs.String(), token) {
				t.Errorf("the token appears in the logs:\n%s", logs.String())
			}
		})
	}
}

// TestConnectJSON calls the service the way the README's curl example does:
// a plain HTTP/1.1 POST with a JSON body.
func TestConnectJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, nil)
	post := func(procedure, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(e.url+"/sms.NodeService/"+procedure, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s: %v", procedure, err)
		}
		defer resp.Body.Close()
		var got map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatalf("POST %s: decoding the JSON response: %v", procedure, err)
		}
		return resp.StatusCode, got
	}

	status, got := post("RegisterNode", `{"node":{"ip_address":"10.0.0.5","port":8080}}`)
	if status != http.StatusOK || got["success"] != true || got["message"] == "" {
		t.Fatalf("RegisterNode = %d %v, want 200 with success and a message", status, got)
	}
	id, _ := got["nodeUuid"].(string)
	if _, err := uuid.Parse(id); err != nil {
		t.Fatalf("RegisterNode nodeUuid = %q, want a uuid", id)
	}

	status, got = post("GetNode", `{"uuid":"`+id+`"}`)
	node, _ := got["node"].(map[string]any)
	if status != http.StatusOK || got["found"] != true || node["ipAddress"] != "10.0.0.5" || node["port"] != 8080.0 {
		t.Errorf("GetNode = %d %v, want 200 with the node", status, got)
	}

	status, got = post("RegisterNode", `{"node":{"ip_address":"10.0.0.5","port":0}}`)
	if status != http.StatusBadRequest || got["code"] != "invalid_argument" {
		t.Errorf("RegisterNode with port 0 = %d %v, want 400 invalid_argument", status, got)
	}
}
