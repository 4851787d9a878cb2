package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spear-next/sms/internal/cliopt"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/sqlkv/kvstore"
)

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func parse(t *testing.T, args []string, environ map[string]string) (config, error) {
	t.Helper()
	var out bytes.Buffer
	return parseConfig(args, env(environ), &out)
}

func mustParse(t *testing.T, args []string, environ map[string]string) config {
	t.Helper()
	c, err := parse(t, args, environ)
	if err != nil {
		t.Fatalf("parseConfig(%q) = %v, want no error", args, err)
	}
	return c
}

// writeFile writes content to a new file in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key, and
// returns their paths.
func writeCert(t *testing.T) (certFile, keyFile string) { return testutil.WriteCert(t) }

func TestParseConfigDefaults(t *testing.T) {
	c := mustParse(t, nil, nil)
	checks := []struct {
		name      string
		got, want any
	}{
		{"addr", c.addr, "127.0.0.1:50051"},
		{"store", c.store, kvstore.Config{Backend: "sqlite", Path: "./data/sms.db", SQLiteSynchronous: "full"}},
		{"heartbeatTimeout", c.heartbeatTimeout, 90 * time.Second},
		{"cleanupInterval", c.cleanupInterval, 30 * time.Second},
		{"nodeTTL", c.nodeTTL, time.Duration(0)},
		{"maxRequestBytes", c.maxRequestBytes, 4194304},
		{"maxWatchers", c.maxWatchers, 1024},
		{"readHeaderTimeout", c.readHeaderTimeout, 10 * time.Second},
		{"readBodyTimeout", c.readBodyTimeout, 30 * time.Second},
		{"corsOrigins", len(c.corsOrigins), 0},
		{"tls", c.tlsCert == nil && c.clientCAs == nil, true},
		{"authToken", c.authToken, ""},
		{"logLevel", c.logLevel, slog.LevelInfo},
		{"logFormat", c.logFormat, "text"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("default %s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestParseConfigFromEnv(t *testing.T) {
	c := mustParse(t, nil, map[string]string{
		"SMS_ADDR":              ":9000",
		"KV_BACKEND":            "postgres",
		"KV_DSN":                "postgres://u:p@db/sms",
		"SMS_HEARTBEAT_TIMEOUT": "1m",
		"SMS_CLEANUP_INTERVAL":  "5s",
		"SMS_NODE_TTL":          "1h",
		"SMS_MAX_REQUEST_BYTES": "1024",
		"SMS_LOG_LEVEL":         "debug",
		"SMS_LOG_FORMAT":        "json",
	})
	if c.addr != ":9000" || c.store != kvstore.Postgres("postgres://u:p@db/sms") || c.heartbeatTimeout != time.Minute ||
		c.cleanupInterval != 5*time.Second || c.nodeTTL != time.Hour || c.maxRequestBytes != 1024 ||
		c.logLevel != slog.LevelDebug || c.logFormat != "json" {
		t.Errorf("config from env = %+v, want every env value applied", c)
	}
}

// --cors-allow-origin is repeatable; its variable is comma-separated; a
// flag replaces the variable's whole list.
func TestParseConfigCORSOrigins(t *testing.T) {
	c := mustParse(t, []string{"--cors-allow-origin", "https://a.example", "--cors-allow-origin=http://127.0.0.1:8080/"}, nil)
	if got, want := strings.Join(c.corsOrigins, " "), "https://a.example http://127.0.0.1:8080"; got != want {
		t.Errorf("origins from flags = %q, want %q", got, want)
	}
	c = mustParse(t, nil, map[string]string{"SMS_CORS_ALLOW_ORIGIN": "https://a.example, https://b.example"})
	if got, want := strings.Join(c.corsOrigins, " "), "https://a.example https://b.example"; got != want {
		t.Errorf("origins from env = %q, want %q", got, want)
	}
	c = mustParse(t, []string{"--cors-allow-origin", "*"}, map[string]string{"SMS_CORS_ALLOW_ORIGIN": "https://a.example"})
	if got, want := strings.Join(c.corsOrigins, " "), "*"; got != want {
		t.Errorf("origins from flag and env = %q, want %q", got, want)
	}
}

func TestParseConfigFlagBeatsEnv(t *testing.T) {
	c := mustParse(t,
		[]string{"--addr", ":7000", "-kv-backend=memory", "--heartbeat-timeout=2m", "--node-ttl", "0"},
		map[string]string{"SMS_ADDR": ":9000", "KV_BACKEND": "sqlite", "SMS_HEARTBEAT_TIMEOUT": "1m", "SMS_NODE_TTL": "1h"})
	if got, want := c.addr, ":7000"; got != want {
		t.Errorf("addr = %q, want %q", got, want)
	}
	if got, want := c.store.Backend, "memory"; got != want {
		t.Errorf("backend = %q, want %q", got, want)
	}
	if got, want := c.heartbeatTimeout, 2*time.Minute; got != want {
		t.Errorf("heartbeatTimeout = %v, want %v", got, want)
	}
	if got, want := c.nodeTTL, time.Duration(0); got != want {
		t.Errorf("nodeTTL = %v, want %v (the flag's 0 beats the env's 1h)", got, want)
	}
}

func TestParseConfigBadEnvOverriddenByFlag(t *testing.T) {
	token := writeFile(t, "token", "s3cret\n")
	tests := []struct {
		env, bad string
		flag     []string
	}{
		{"SMS_ADDR", "nonsense", []string{"--addr", "127.0.0.1:1"}},
		{"KV_BACKEND", "oracle", []string{"--kv-backend", "memory"}},
		{"KV_SQLITE_SYNCHRONOUS", "off", []string{"--sqlite-synchronous", "normal"}},
		{"SMS_HEARTBEAT_TIMEOUT", "abc", []string{"--heartbeat-timeout", "10s"}},
		{"SMS_CLEANUP_INTERVAL", "-1s", []string{"--cleanup-interval", "10s"}},
		{"SMS_NODE_TTL", "1s", []string{"--node-ttl", "0"}},
		{"SMS_MAX_REQUEST_BYTES", "lots", []string{"--max-request-bytes", "10"}},
		{"SMS_TLS_CLIENT_CA", "/nonexistent/ca.pem", []string{"--tls-client-ca", ""}},
		{"SMS_AUTH_TOKEN_FILE", "/nonexistent/token", []string{"--auth-token-file", token}},
		{"SMS_LOG_LEVEL", "loud", []string{"--log-level", "warn"}},
		{"SMS_LOG_FORMAT", "xml", []string{"--log-format", "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			environ := map[string]string{tt.env: tt.bad}
			if _, err := parse(t, nil, environ); err == nil {
				t.Fatalf("%s=%q without a flag: no error, want one (else this test proves nothing)", tt.env, tt.bad)
			}
			mustParse(t, tt.flag, environ)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	certFile, keyFile := writeCert(t)
	notPEM := writeFile(t, "garbage.pem", "not a certificate")
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error, after the flag and env names
	}{
		{"addr without port", []string{"--addr", "localhost"}, nil,
			[]string{"--addr (SMS_ADDR)", `"localhost"`, "host:port"}},
		{"grpc-addr without port", []string{"--grpc-addr", "localhost"}, nil,
			[]string{"--grpc-addr (SMS_GRPC_ADDR)", `"localhost"`, "host:port"}},
		{"bad inherited socket", []string{"--http-addr", "fd:1"}, nil,
			[]string{"--http-addr (SMS_HTTP_ADDR)", `"fd:1"`, "fd:N with N >= 3"}},
		{"both layouts", []string{"--addr", ":1", "--grpc-addr", ":2"}, nil,
			[]string{"--grpc-addr (SMS_GRPC_ADDR)", "set together with --addr", "SPEAR's layout"}},
		{"both layouts from env", []string{"--http-addr", ":2"}, map[string]string{"SMS_ADDR": ":1"},
			[]string{"--http-addr (SMS_HTTP_ADDR)", "set together with --addr"}},
		{"one address for both", []string{"--grpc-addr", ":7", "--http-addr", ":7"}, nil,
			[]string{"--http-addr (SMS_HTTP_ADDR)", `":7" is also --grpc-addr`}},
		{"unknown backend", []string{"--kv-backend", "mysql"}, nil,
			[]string{"--kv-backend (KV_BACKEND)", `"mysql"`, "memory", "sqlite", "postgres"}},
		{"unknown backend from env", nil, map[string]string{"KV_BACKEND": "mysql"},
			[]string{"--kv-backend (KV_BACKEND)", `"mysql"`, "memory, sqlite or postgres"}},
		{"empty sqlite path", []string{"--kv-path", ""}, nil,
			[]string{"--kv-path (KV_PATH)", "empty"}},
		{"postgres without dsn", []string{"--kv-backend", "postgres"}, nil,
			[]string{"--kv-dsn (KV_DSN)", "missing", "postgres"}},
		{"zero watchers", []string{"--max-watchers", "0"}, nil,
			[]string{"--max-watchers (SMS_MAX_WATCHERS)", `"0"`, "a count > 0"}},
		{"bad body timeout", nil, map[string]string{"SMS_READ_BODY_TIMEOUT": "soon"},
			[]string{"--read-body-timeout (SMS_READ_BODY_TIMEOUT)", `"soon"`, "duration"}},
		{"origin with a path", []string{"--cors-allow-origin", "https://a.example/app"}, nil,
			[]string{"--cors-allow-origin (SMS_CORS_ALLOW_ORIGIN)", `"https://a.example/app"`, "scheme://host[:port]"}},
		{"origin without scheme", nil, map[string]string{"SMS_CORS_ALLOW_ORIGIN": "a.example"},
			[]string{"--cors-allow-origin (SMS_CORS_ALLOW_ORIGIN)", `"a.example"`}},
		{"bad synchronous", []string{"--sqlite-synchronous", "off"}, nil,
			[]string{"--sqlite-synchronous (KV_SQLITE_SYNCHRONOUS)", `"off"`, "full or normal"}},
		{"synchronous with postgres", []string{"--kv-backend", "postgres", "--kv-dsn", "postgres://db/x", "--sqlite-synchronous", "normal"}, nil,
			[]string{"--sqlite-synchronous (KV_SQLITE_SYNCHRONOUS)", "set, but the postgres backend does not use it", "the sqlite backend"}},
		{"dsn from env with memory", []string{"--kv-backend", "memory"}, map[string]string{"KV_DSN": "postgres://u:hunter2@db/x"},
			[]string{"--kv-dsn (KV_DSN)", "set, but the memory backend does not use it"}},
		{"path with postgres", []string{"--kv-backend", "postgres", "--kv-dsn", "postgres://db/x", "--kv-path", "x.db"}, nil,
			[]string{"--kv-path (KV_PATH)", "the postgres backend does not use it"}},
		{"skip migrations with memory", []string{"--kv-backend", "memory", "--skip-migrations"}, nil,
			[]string{"--skip-migrations (SMS_SKIP_MIGRATIONS)", "the memory backend does not use it"}},
		{"heartbeat not a duration", nil, map[string]string{"SMS_HEARTBEAT_TIMEOUT": "abc"},
			[]string{"--heartbeat-timeout (SMS_HEARTBEAT_TIMEOUT)", `"abc" is not a duration`, "> 0 such as 90s"}},
		{"heartbeat zero", []string{"--heartbeat-timeout", "0s"}, nil,
			[]string{"--heartbeat-timeout (SMS_HEARTBEAT_TIMEOUT)", `"0s" is not > 0`}},
		{"heartbeat negative", []string{"--heartbeat-timeout", "-5s"}, nil,
			[]string{"--heartbeat-timeout (SMS_HEARTBEAT_TIMEOUT)", `"-5s"`}},
		{"heartbeat without unit", []string{"--heartbeat-timeout", "90"}, nil,
			[]string{"--heartbeat-timeout (SMS_HEARTBEAT_TIMEOUT)", `"90" is not a duration`}},
		{"cleanup zero", []string{"--cleanup-interval", "0"}, nil,
			[]string{"--cleanup-interval (SMS_CLEANUP_INTERVAL)", "> 0"}},
		{"cleanup not a duration", []string{"--cleanup-interval", "often"}, nil,
			[]string{"--cleanup-interval (SMS_CLEANUP_INTERVAL)", `"often" is not a duration`}},
		{"node ttl not a duration", []string{"--node-ttl", "forever"}, nil,
			[]string{"--node-ttl (SMS_NODE_TTL)", `"forever" is not a duration`, "0 (never)"}},
		{"node ttl negative", []string{"--node-ttl", "-1h"}, nil,
			[]string{"--node-ttl (SMS_NODE_TTL)", "negative"}},
		{"node ttl below heartbeat timeout", []string{"--node-ttl", "30s"}, nil,
			[]string{"--node-ttl (SMS_NODE_TTL)", "30s is shorter than --heartbeat-timeout 1m30s", ">= --heartbeat-timeout"}},
		{"node ttl below heartbeat timeout from env", nil, map[string]string{"SMS_HEARTBEAT_TIMEOUT": "2m", "SMS_NODE_TTL": "1m"},
			[]string{"--node-ttl (SMS_NODE_TTL)", "shorter than --heartbeat-timeout 2m0s"}},
		{"max request bytes not a number", []string{"--max-request-bytes", "4MB"}, nil,
			[]string{"--max-request-bytes (SMS_MAX_REQUEST_BYTES)", `"4MB" is not an integer`, "> 0"}},
		{"max request bytes zero", []string{"--max-request-bytes", "0"}, nil,
			[]string{"--max-request-bytes (SMS_MAX_REQUEST_BYTES)", `"0" is not > 0`}},
		{"tls key without cert", []string{"--tls-key", keyFile}, nil,
			[]string{"--tls-cert (SMS_TLS_CERT)", "missing", "both --tls-cert and --tls-key, or neither"}},
		{"tls cert without key", []string{"--tls-cert", certFile}, nil,
			[]string{"--tls-key (SMS_TLS_KEY)", "missing", "or neither"}},
		{"client ca without tls", []string{"--tls-client-ca", certFile}, nil,
			[]string{"--tls-client-ca (SMS_TLS_CLIENT_CA)", "without --tls-cert"}},
		{"unreadable cert", []string{"--tls-cert", missing, "--tls-key", keyFile}, nil,
			[]string{"--tls-cert (SMS_TLS_CERT)", missing, "PEM certificate"}},
		{"unreadable key", []string{"--tls-cert", certFile, "--tls-key", missing}, nil,
			[]string{"--tls-key (SMS_TLS_KEY)", missing}},
		{"cert not PEM", []string{"--tls-cert", notPEM, "--tls-key", keyFile}, nil,
			[]string{"--tls-cert (SMS_TLS_CERT)", notPEM}},
		{"key does not match", []string{"--tls-cert", certFile, "--tls-key", notPEM}, nil,
			[]string{"--tls-cert (SMS_TLS_CERT)", notPEM}},
		{"unreadable client ca", []string{"--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", missing}, nil,
			[]string{"--tls-client-ca (SMS_TLS_CLIENT_CA)", missing}},
		{"client ca not PEM", []string{"--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", notPEM}, nil,
			[]string{"--tls-client-ca (SMS_TLS_CLIENT_CA)", "no PEM certificate"}},
		{"unreadable token file", []string{"--auth-token-file", missing}, nil,
			[]string{"--auth-token-file (SMS_AUTH_TOKEN_FILE)", missing, "readable file holding one token"}},
		{"token file is a directory", []string{"--auth-token-file", t.TempDir()}, nil,
			[]string{"--auth-token-file (SMS_AUTH_TOKEN_FILE)"}},
		{"empty token file", []string{"--auth-token-file", writeFile(t, "empty", "")}, nil,
			[]string{"--auth-token-file (SMS_AUTH_TOKEN_FILE)", "is empty"}},
		{"blank token file", []string{"--auth-token-file", writeFile(t, "blank", " \n\t\n")}, nil,
			[]string{"--auth-token-file (SMS_AUTH_TOKEN_FILE)", "is empty"}},
		{"two tokens", []string{"--auth-token-file", writeFile(t, "two", "tok-one\ntok-two\n")}, nil,
			[]string{"--auth-token-file (SMS_AUTH_TOKEN_FILE)", "whitespace"}},
		{"bad log level", []string{"--log-level", "trace"}, nil,
			[]string{"--log-level (SMS_LOG_LEVEL)", `"trace"`, "debug, info, warn or error"}},
		{"bad log format", nil, map[string]string{"SMS_LOG_FORMAT": "logfmt"},
			[]string{"--log-format (SMS_LOG_FORMAT)", `"logfmt"`, "text or json"}},
		{"unknown flag", []string{"--port", "80"}, nil,
			[]string{"-port", "--help"}},
		{"flag without value", []string{"--addr"}, nil,
			[]string{"-addr", "--help"}},
		{"positional argument", []string{"serve"}, nil,
			[]string{`"serve"`, "only flags"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.args, tt.env)
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("parseConfig(%q, %v) = %v, want a *usageError", tt.args, tt.env, err)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q spans several lines, want one", msg)
			}
		})
	}
}

func TestParseConfigLayouts(t *testing.T) {
	tests := []struct {
		name                     string
		args                     []string
		env                      map[string]string
		addr, grpcAddr, httpAddr string
	}{
		{"default: one port", nil, nil, "127.0.0.1:50051", "", ""},
		{"spear's layout", []string{"--grpc-addr", ":50051", "--http-addr", ":8080"}, nil, "", ":50051", ":8080"},
		{"spear's layout from env", nil, map[string]string{"SMS_GRPC_ADDR": ":1", "SMS_HTTP_ADDR": ":2"}, "", ":1", ":2"},
		{"grpc only: http at SPEAR's default", []string{"--grpc-addr", ":9"}, nil, "", ":9", "127.0.0.1:8080"},
		{"http only: grpc at SPEAR's default", []string{"--http-addr", ":9"}, nil, "", "127.0.0.1:50051", ":9"},
		{"inherited sockets", []string{"--grpc-addr", "fd:3", "--http-addr", "fd:4"}, nil, "", "fd:3", "fd:4"},
		{"both on port 0", []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, nil, "", "127.0.0.1:0", "127.0.0.1:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.args, tt.env)
			if c.addr != tt.addr || c.grpcAddr != tt.grpcAddr || c.httpAddr != tt.httpAddr {
				t.Errorf("addr, grpc-addr, http-addr = %q, %q, %q; want %q, %q, %q",
					c.addr, c.grpcAddr, c.httpAddr, tt.addr, tt.grpcAddr, tt.httpAddr)
			}
		})
	}
}

func TestParseConfigNodeTTLBounds(t *testing.T) {
	c := mustParse(t, []string{"--heartbeat-timeout", "1m", "--node-ttl", "1m"}, nil)
	if got, want := c.nodeTTL, time.Minute; got != want {
		t.Errorf("nodeTTL = %v, want %v (equal to the heartbeat timeout is allowed)", got, want)
	}
}

func TestParseConfigDSNNeverInErrors(t *testing.T) {
	const dsn = "postgres://sms:hunter2@db/sms"
	_, err := parse(t, []string{"--kv-backend", "postgres", "--kv-dsn", dsn, "--log-level", "loud"}, nil)
	if err == nil {
		t.Fatal("parseConfig with a bad log level: no error")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q contains the DSN password", err)
	}
}

func TestParseConfigTLS(t *testing.T) {
	certFile, keyFile := writeCert(t)
	c := mustParse(t, nil, map[string]string{"SMS_TLS_CERT": certFile, "SMS_TLS_KEY": keyFile, "SMS_TLS_CLIENT_CA": certFile})
	if c.tlsCert == nil {
		t.Error("tlsCert = nil, want the loaded certificate")
	}
	if c.clientCAs == nil {
		t.Error("clientCAs = nil, want the loaded pool")
	}
}

func TestParseConfigToken(t *testing.T) {
	file := writeFile(t, "token", "\n  s3cret-Token_1 \r\n")
	c := mustParse(t, []string{"--auth-token-file", file}, nil)
	if got, want := c.authToken, "s3cret-Token_1"; got != want {
		t.Errorf("authToken = %q, want %q", got, want)
	}

	file = writeFile(t, "two", "tok-one tok-two")
	_, err := parse(t, []string{"--auth-token-file", file}, nil)
	if err == nil {
		t.Fatal("two tokens: no error")
	}
	if strings.Contains(err.Error(), "tok-one") {
		t.Errorf("error %q shows the token", err)
	}
}

func TestParseConfigHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var out bytes.Buffer
		_, err := parseConfig([]string{arg}, env(nil), &out)
		if !errors.Is(err, errHelp) {
			t.Fatalf("parseConfig(%s) = %v, want errHelp", arg, err)
		}
		for _, o := range options {
			name := "--" + o.Name + " "
			if o.Arg == cliopt.BoolArg {
				name = "--" + o.Name + cliopt.BoolArg
			}
			for _, w := range []string{name, o.Env, o.Default} {
				if !strings.Contains(out.String(), w) {
					t.Errorf("%s output does not mention %q:\n%s", arg, w, out.String())
				}
			}
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		code     int
		wantLine string
	}{
		{"success", nil, 0, ""},
		{"help", errHelp, 0, ""},
		{"usage", &usageError{Msg: "--addr (SMS_ADDR): bad"}, 2, "sms: --addr (SMS_ADDR): bad\n"},
		{"runtime", errors.New("listen tcp: address\nalready in use"), 1, "sms: listen tcp: address already in use\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := exitCode(tt.err, &stderr); got != tt.code {
				t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.code)
			}
			if got := stderr.String(); got != tt.wantLine {
				t.Errorf("stderr = %q, want %q", got, tt.wantLine)
			}
		})
	}
}
