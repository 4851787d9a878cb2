package main

import (
	"io"
	"maps"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "http://127.0.0.1:50051" || c.nodePort != 50052 || c.heartbeatInterval != 10*time.Second ||
		c.reportInterval != 5*time.Second || c.diskPath != "/" || c.machineIDFile != "/etc/machine-id" || c.once || c.metricsAddr != "" {
		t.Errorf("defaults = %+v", c)
	}
}

func TestParseConfigFlagsBeatEnv(t *testing.T) {
	env := envOf(map[string]string{
		"SMS_ADDR":                     "https://sms.example:443",
		"SMS_AGENT_HEARTBEAT_INTERVAL": "not a duration", // overridden by the flag: never read
		"SMS_AGENT_LABELS":             "zone=a, rack=r1",
		"SMS_AGENT_NODE_UUID":          "0B6F8A1E-3C2D-4E5F-8A9B-1C2D3E4F5A6B",
	})
	c, err := parseConfig([]string{"--heartbeat-interval", "3s", "--once"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "https://sms.example:443" || c.heartbeatInterval != 3*time.Second || !c.once ||
		c.nodeUUID != "0b6f8a1e-3c2d-4e5f-8a9b-1c2d3e4f5a6b" {
		t.Errorf("config = %+v", c)
	}
	if want := map[string]string{"zone": "a", "rack": "r1"}; !maps.Equal(c.labels, want) {
		t.Errorf("labels from env = %v, want %v", c.labels, want)
	}
	c, err = parseConfig([]string{"--label", "zone=b", "--heartbeat-interval", "3s"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"zone": "b"}; !maps.Equal(c.labels, want) {
		t.Errorf("labels with --label = %v, want %v (the flag replaces the env list)", c.labels, want)
	}
}

func TestParseConfigTokenAndTLS(t *testing.T) {
	if _, err := parseConfig([]string{"--token", "a", "--token-file", "/x"}, envOf(nil), io.Discard); err == nil {
		t.Error("--token with --token-file accepted")
	}
	if _, err := parseConfig([]string{"--tls-cert", "/x"}, envOf(nil), io.Discard); err == nil {
		t.Error("--tls-cert without --tls-key accepted")
	}
	if _, err := parseConfig([]string{"--addr", "http://x:1", "--insecure-skip-verify"}, envOf(nil), io.Discard); err == nil {
		t.Error("http:// with a TLS flag accepted")
	}
	if _, err := parseConfig([]string{"--addr", "x:1", "--insecure-skip-verify"}, envOf(nil), io.Discard); err != nil {
		t.Errorf("host:port with a TLS flag: %v, want https implied", err)
	}
}
