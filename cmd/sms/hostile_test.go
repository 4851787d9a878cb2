package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spear-next/sms/internal/procstat"
	"github.com/spear-next/sms/internal/testutil"
)

// TestHostileReport is the measuring command behind RELIABILITY.md's table
// of hostile inputs (set SMS_HOSTILE_REPORT=1): it runs the binary on
// SQLite with a bearer token and sends, per surface (Connect, gRPC,
// gRPC-web, REST), a 1 GiB gzip bomb without and with the token, a 6 MB
// plain body, and a truncated frame or bad JSON without the token, and
// prints the answer and the server's RSS before and after each. It checks
// nothing a unit test does not; it measures the real process.
func TestHostileReport(t *testing.T) {
	if os.Getenv("SMS_HOSTILE_REPORT") == "" {
		t.Skip("a measuring command: set SMS_HOSTILE_REPORT=1")
	}
	bin := testutil.BuildBinary(t, ".", "sms")
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("s3cret\n"), 0o600)
	addr := testutil.HoldPort(t)
	url := "http://" + addr
	p := testutil.StartProcess(t, bin, "--addr", addr, "--kv-path", filepath.Join(t.TempDir(), "sms.db"), "--auth-token-file", token)
	p.WaitHealthy(t, url)
	client := testutil.H2CClient()

	const gib = 1 << 30
	protoHead := binary.AppendUvarint(binary.AppendUvarint(nil, 9999<<3|2), gib)
	protoBomb := testutil.GzipBomb(protoHead, 0, gib, nil)
	jsonBomb := testutil.GzipBomb([]byte(`{"ip_address":"10.0.0.1","port":1,"metadata":{"k":"`), 'a', gib, []byte(`"}}`))
	frame := func(flags byte, b []byte) []byte {
		out := []byte{flags, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
		return append(out, b...)
	}
	plain := bytes.Repeat([]byte{'x'}, 6<<20)
	plainProto := append(binary.AppendUvarint(binary.AppendUvarint(nil, 9999<<3|2), uint64(len(plain))), plain...)
	plainJSON := []byte(`{"ip_address":"10.0.0.1","port":1,"metadata":{"k":"` + string(plain) + `"}}`)

	type input struct {
		surface, what string
		path, ctype   string
		header        map[string]string
		body          []byte
	}
	auth := map[string]string{"Authorization": "Bearer s3cret"}
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	reg := "/sms.NodeService/RegisterNode"
	var inputs []input
	for _, s := range []struct {
		name, ctype, enc string
		framed           bool
	}{
		{"Connect", "application/proto", "Content-Encoding", false},
		{"gRPC", "application/grpc", "Grpc-Encoding", true},
		{"gRPC-web", "application/grpc-web+proto", "Grpc-Encoding", true},
	} {
		b, pl := protoBomb, plainProto
		if s.framed {
			b, pl = frame(1, protoBomb), frame(0, plainProto)
		}
		inputs = append(inputs,
			input{s.name, fmt.Sprintf("gzip bomb, %d KB -> 1 GiB, no token", len(protoBomb)>>10), reg, s.ctype, with(nil, s.enc, "gzip"), b},
			input{s.name, "same bomb, with the token", reg, s.ctype, with(auth, s.enc, "gzip"), b},
			input{s.name, "6 MB plain body, with the token", reg, s.ctype, auth, pl},
		)
		if s.framed {
			inputs = append(inputs, input{s.name, "truncated frame, with the token", reg, s.ctype, auth, []byte{0, 0, 0, 0, 100, 1}})
		} else {
			inputs = append(inputs, input{s.name, "bad JSON, no token", reg, "application/json", nil, []byte("{not json")})
		}
	}
	inputs = append(inputs,
		input{"REST", fmt.Sprintf("gzip bomb, %d KB -> 1 GiB, no token", len(jsonBomb)>>10), "/api/v1/nodes", "application/json", with(nil, "Content-Encoding", "gzip"), jsonBomb},
		input{"REST", "same bomb, with the token", "/api/v1/nodes", "application/json", with(auth, "Content-Encoding", "gzip"), jsonBomb},
		input{"REST", "6 MB plain body, with the token", "/api/v1/nodes", "application/json", auth, plainJSON},
		input{"REST", "bad JSON, no token", "/api/v1/nodes", "application/json", nil, []byte("{not json")},
	)

	fmt.Println("| surface | input | answer | server RSS before → after | time |")
	fmt.Println("|---|---|---|---|---|")
	for _, in := range inputs {
		before := procstat.RSS(p.Cmd.Process.Pid)
		req, _ := http.NewRequest(http.MethodPost, url+in.path, bytes.NewReader(in.body))
		req.Header.Set("Content-Type", in.ctype)
		for k, v := range in.header {
			req.Header.Set(k, v)
		}
		start := time.Now()
		resp, err := client.Do(req)
		answer := ""
		if err != nil {
			answer = "error: " + err.Error()
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answer = describe(resp, body)
		}
		took := time.Since(start)
		fmt.Printf("| %s | %s | %s | %.0f → %.0f MB | %s |\n", in.surface, in.what, answer,
			float64(before)/1e6, float64(procstat.RSS(p.Cmd.Process.Pid))/1e6, took.Round(time.Millisecond))
	}
}

// describe names an answer: HTTP status plus the gRPC or Connect code.
func describe(resp *http.Response, body []byte) string {
	code := resp.Header.Get("Grpc-Status") + resp.Trailer.Get("Grpc-Status")
	if code == "" {
		if _, rest, ok := strings.Cut(string(body), "grpc-status:"); ok {
			code, _, _ = strings.Cut(strings.TrimSpace(rest), "\r\n")
		}
	}
	if code != "" {
		return fmt.Sprintf("grpc-status %s", code)
	}
	if _, rest, ok := strings.Cut(string(body), `"code":"`); ok {
		c, _, _ := strings.Cut(rest, `"`)
		return fmt.Sprintf("HTTP %d %s", resp.StatusCode, c)
	}
	return fmt.Sprintf("HTTP %d", resp.StatusCode)
}
