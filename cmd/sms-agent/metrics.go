package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spear-next/sms/client"
)

// metricsHandler serves the agent's own metrics, read from its Stats at
// each scrape, with the Go and process collectors.
func metricsHandler(agent *client.Agent) http.Handler {
	reg := prometheus.NewRegistry()
	stat := func(f func(client.AgentStats) float64) func() float64 {
		return func() float64 { return f(agent.Stats()) }
	}
	labels := prometheus.Labels{"node": agent.UUID()}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sms_agent_registered", Help: "1 while the agent's node is registered as far as it knows, else 0.", ConstLabels: labels,
		}, stat(func(s client.AgentStats) float64 {
			if s.Registered {
				return 1
			}
			return 0
		})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sms_agent_last_heartbeat_timestamp_seconds", Help: "Server time of the last successful heartbeat or registration, in Unix seconds; 0 before the first.", ConstLabels: labels,
		}, stat(func(s client.AgentStats) float64 {
			if s.LastHeartbeat.IsZero() {
				return 0
			}
			return float64(s.LastHeartbeat.Unix())
		})),
	)
	counters := []struct {
		name, help string
		count      func(client.AgentStats) int64
	}{
		{"sms_agent_registrations_total", "Successful registrations of the node (re-registrations included).", func(s client.AgentStats) int64 { return s.Registrations }},
		{"sms_agent_heartbeats_total", "Successful heartbeats.", func(s client.AgentStats) int64 { return s.Heartbeats }},
		{"sms_agent_reports_total", "Successful resource reports.", func(s client.AgentStats) int64 { return s.Reports }},
		{"sms_agent_failures_total", "Failed calls to the server, of any kind.", func(s client.AgentStats) int64 { return s.Failures }},
	}
	for _, c := range counters {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help, ConstLabels: labels},
			stat(func(s client.AgentStats) float64 { return float64(c.count(s)) })))
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
