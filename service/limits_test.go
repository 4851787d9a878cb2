package service_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service/registry"
)

// Metadata beyond the registry's limits is invalid_argument on the wire,
// for every RPC that carries a map.
func TestMetadataLimitsOnTheWire(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, openStore(t, "memory"), p, nil)
			id := e.register(t, nodeA, "")
			tooMany := map[string]string{}
			for i := range registry.MaxMetadataEntries + 1 {
				tooMany[strings.Repeat("k", i+1)] = "v"
			}
			longValue := map[string]string{"k": strings.Repeat("v", registry.MaxMetadataValueBytes+1)}

			_, err := e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{
				IpAddress: "10.0.0.1", Port: 1, Metadata: tooMany}})
			wantCode(t, err, connect.CodeInvalidArgument)
			_, err = e.client.UpdateNode(t.Context(), &smspb.UpdateNodeRequest{Uuid: id, Node: &smspb.Node{
				IpAddress: "10.0.0.1", Port: 1, Metadata: longValue}})
			wantCode(t, err, connect.CodeInvalidArgument)
			_, err = e.client.Heartbeat(t.Context(), &smspb.HeartbeatRequest{Uuid: id, HealthInfo: tooMany})
			wantCode(t, err, connect.CodeInvalidArgument)
			_, err = e.client.UpdateNodeResource(t.Context(), &smspb.UpdateNodeResourceRequest{Resource: &smspb.NodeResource{
				NodeUuid: id, ResourceMetadata: longValue}})
			wantCode(t, err, connect.CodeInvalidArgument)
		})
	}
}

// bombSize is what the compressed request of TestCompressedRequestBomb
// inflates to: 64 times the default request limit.
const bombSize = 256 << 20

var (
	bombOnce sync.Once
	bomb     []byte
)

// gzipBomb returns a gzip stream, a few hundred KB, of a RegisterNodeRequest
// that inflates to bombSize bytes (an unknown bytes field full of zeros).
// It is a series of gzip members (RFC 1952 allows several, and Go's reader
// reads them as one stream): the field's header, then one member of 1 MiB
// of zeros repeated, which is quick to build even under the race detector.
func gzipBomb(t *testing.T) []byte {
	t.Helper()
	bombOnce.Do(func() {
		member := func(b []byte) []byte {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(b)
			zw.Close()
			return buf.Bytes()
		}
		const chunk = 1 << 20
		// Field 9999, wire type 2 (bytes), then its length.
		head := binary.AppendUvarint(nil, 9999<<3|2)
		head = binary.AppendUvarint(head, bombSize)
		bomb = member(head)
		zeros := member(make([]byte, chunk))
		for range bombSize / chunk {
			bomb = append(bomb, zeros...)
		}
	})
	return bomb
}

// A compressed request whose message inflates past MaxRequestBytes is
// resource_exhausted on every protocol: the limit applies after
// decompression (connect.WithReadMaxBytes, grpc.MaxRecvMsgSize), and the
// server stops inflating at the limit, so serving it allocates a small
// multiple of the limit, not the inflated size.
func TestCompressedRequestBomb(t *testing.T) {
	body := gzipBomb(t)
	t.Logf("gzip bomb: %d bytes compressed, %d MiB inflated, limit 4 MiB", len(body), (bombSize+8)>>20)
	e := newEnv(t, openStore(t, "memory"), connectHTTP, nil)
	envelope := func(b []byte) []byte {
		out := []byte{1, 0, 0, 0, 0} // flag 1: compressed
		binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
		return append(out, b...)
	}
	requests := []struct {
		name        string
		url         string
		contentType string
		encoding    string // header naming the compression
		body        []byte
		code        func(resp *http.Response, body []byte) string
	}{
		{"connect", e.url, "application/proto", "Content-Encoding", body, func(_ *http.Response, b []byte) string {
			var e struct{ Code string }
			json.Unmarshal(b, &e)
			return e.Code
		}},
		{"grpc", e.url, "application/grpc", "Grpc-Encoding", envelope(body), trailerCode},
		{"grpc-go", e.grpcURL, "application/grpc", "Grpc-Encoding", envelope(body), trailerCode},
		{"grpcweb", e.url, "application/grpc-web+proto", "Grpc-Encoding", envelope(body), func(r *http.Response, b []byte) string {
			if s := r.Header.Get("Grpc-Status"); s != "" {
				return grpcCode(s)
			}
			// Trailers in the body: a frame with flag 0x80 and "grpc-status: N".
			_, rest, _ := strings.Cut(string(b), "grpc-status:")
			s, _, _ := strings.Cut(strings.TrimSpace(rest), "\r\n")
			return grpcCode(s)
		}},
	}
	for _, r := range requests {
		t.Run(r.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
				r.url+"/sms.NodeService/RegisterNode", bytes.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", r.contentType)
			req.Header.Set(r.encoding, "gzip")
			resp, err := e.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			respBody, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			runtime.ReadMemStats(&after)

			if got, want := r.code(resp, respBody), "resource_exhausted"; got != want {
				t.Errorf("code = %q, want %q (HTTP %d, %q)", got, want, resp.StatusCode, respBody)
			}
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %.1f MiB while serving it (client included)", float64(allocated)/(1<<20))
			if allocated > 64<<20 {
				t.Errorf("allocated %d MiB serving a request that inflates to %d MiB; want memory bounded by the 4 MiB limit",
					allocated>>20, bombSize>>20)
			}
		})
	}
}

// trailerCode is the code of a gRPC response, from its headers
// (trailers-only) or trailers.
func trailerCode(r *http.Response, _ []byte) string {
	return grpcCode(r.Header.Get("Grpc-Status") + r.Trailer.Get("Grpc-Status"))
}

// grpcCode names a numeric grpc-status the way Connect does.
func grpcCode(s string) string {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return "grpc-status " + s
	}
	return connect.Code(n).String()
}
