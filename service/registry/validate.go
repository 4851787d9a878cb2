package registry

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// ParseStatus returns the canonical Status for s. It ignores case and
// surrounding white space, accepts "online" and "offline" as synonyms of
// active and inactive (SPEAR agents send "online"), and reads "" as active.
// Anything else is a *ValidationError (errors.Is(err, ErrInvalid)).
func ParseStatus(s string) (Status, error) { return parseStatus("status", s) }

func parseStatus(field, s string) (Status, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "active", "online":
		return StatusActive, nil
	case "inactive", "offline":
		return StatusInactive, nil
	case "unhealthy":
		return StatusUnhealthy, nil
	case "decommissioning":
		return StatusDecommissioning, nil
	}
	return "", invalid(field, fmt.Sprintf(
		"unknown status %q; want active, inactive, unhealthy, decommissioning, online or offline", clip(s)))
}

// CanonicalUUID returns s, in any form uuid.Parse accepts (upper case,
// braces, urn:uuid:, 32 hex digits), as a lower-case hyphenated UUID. An
// empty or malformed s is a *ValidationError for the field "uuid".
func CanonicalUUID(s string) (string, error) { return canonicalUUID("uuid", s) }

func canonicalUUID(field, s string) (string, error) {
	if s == "" {
		return "", invalid(field, "required")
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", invalid(field, fmt.Sprintf("not a UUID: %q", clip(s)))
	}
	return u.String(), nil
}

// clip shortens user input quoted in error messages.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// Limits of the free-form maps clients send: a node's metadata, a resource
// report's metadata and a heartbeat's health_info. Each bounds what one
// record costs to store, to send to every watcher and to filter on, whatever
// the request size limit; exceeding one is a *ValidationError
// (invalid_argument on the wire). Keys and values must be valid UTF-8 (as
// protobuf strings are, on the wire and in the stored records, and as the
// JSON format of older records needs); empty keys and values are allowed.
const (
	// MaxMetadataEntries is the most key/value pairs in one map.
	MaxMetadataEntries = 64
	// MaxMetadataKeyBytes is the longest key, in bytes.
	MaxMetadataKeyBytes = 256
	// MaxMetadataValueBytes is the longest value, in bytes.
	MaxMetadataValueBytes = 4096
)

// MaxRequestUUIDs is the most uuids one request may list (ListNodeResources'
// node_uuids, WatchNodes' uuids); more is a *ValidationError. Each costs a
// parse and a read, so without a bound one 4 MiB request could list 100,000.
const MaxRequestUUIDs = 10_000

// checkUUIDCount fails when a list of n uuids, field, is over MaxRequestUUIDs.
func checkUUIDCount(field string, n int) error {
	if n > MaxRequestUUIDs {
		return invalid(field, fmt.Sprintf("lists %d uuids; the most one request may list is %d", n, MaxRequestUUIDs))
	}
	return nil
}

// validateMap checks m against the metadata limits; field names the map in
// the error.
func validateMap(field string, m map[string]string) error {
	if len(m) > MaxMetadataEntries {
		return invalid(field, fmt.Sprintf("at most %d entries, got %d", MaxMetadataEntries, len(m)))
	}
	// Sorted, so that of several bad entries the error always names the
	// same one.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if len(k) > MaxMetadataKeyBytes {
			return invalid(field, fmt.Sprintf("key %q of %d bytes; at most %d", clip(k), len(k), MaxMetadataKeyBytes))
		}
		if v := m[k]; len(v) > MaxMetadataValueBytes {
			return invalid(field+"["+clip(k)+"]", fmt.Sprintf("value of %d bytes; at most %d", len(v), MaxMetadataValueBytes))
		}
		if !utf8.ValidString(k) {
			return invalid(field, fmt.Sprintf("key %q is not valid UTF-8", clip(k)))
		}
		if !utf8.ValidString(m[k]) {
			return invalid(field+"["+clip(k)+"]", "value is not valid UTF-8")
		}
	}
	return nil
}

// validateNode checks the fields of n a client sets (not UUID or times) and
// returns its canonical status.
func validateNode(n Node) (Status, error) {
	if reason := checkHost(n.IPAddress); reason != "" {
		return "", invalid("node.ip_address", reason)
	}
	if n.Port < 1 || n.Port > 65535 {
		return "", invalid("node.port", fmt.Sprintf("must be 1..65535, got %d", n.Port))
	}
	if n.HTTPPort < 0 || n.HTTPPort > 65535 {
		return "", invalid("node.http_port", fmt.Sprintf("must be 0..65535, got %d", n.HTTPPort))
	}
	if err := validateMap("node.metadata", n.Metadata); err != nil {
		return "", err
	}
	return parseStatus("node.status", string(n.Status))
}

// checkHost returns why s is neither an IP address nor an RFC 1123 host
// name, or "" when it is one of them.
func checkHost(s string) string {
	if s == "" {
		return "required"
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return ""
	}
	bad := fmt.Sprintf("must be an IP address or a host name, got %q", clip(s))
	if len(s) > 253 {
		return fmt.Sprintf("must be an IP address or a host name of at most 253 characters, got %d", len(s))
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return bad
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return bad
			}
		}
	}
	// An all-numeric last label makes a malformed IPv4 address such as
	// 256.1.1.1, not a host name (no top-level domain is numeric).
	if _, err := strconv.ParseUint(labels[len(labels)-1], 10, 64); err == nil {
		return bad
	}
	return ""
}

// validateResource checks every number of res and its metadata; NodeUUID is
// checked by the caller.
func validateResource(res Resource) error {
	if err := validateMap("resource.resource_metadata", res.Metadata); err != nil {
		return err
	}
	percents := []struct {
		field string
		v     float64
	}{
		{"resource.cpu_usage_percent", res.CPUUsagePercent},
		{"resource.memory_usage_percent", res.MemoryUsagePercent},
		{"resource.disk_usage_percent", res.DiskUsagePercent},
	}
	for _, p := range percents {
		if math.IsNaN(p.v) || p.v < 0 || p.v > 100 {
			return invalid(p.field, "must be a finite number in [0, 100], got "+formatFloat(p.v))
		}
	}
	loads := []struct {
		field string
		v     float64
	}{
		{"resource.load_average_1m", res.LoadAverage1m},
		{"resource.load_average_5m", res.LoadAverage5m},
		{"resource.load_average_15m", res.LoadAverage15m},
	}
	for _, l := range loads {
		if math.IsNaN(l.v) || math.IsInf(l.v, 0) || l.v < 0 {
			return invalid(l.field, "must be a finite number >= 0, got "+formatFloat(l.v))
		}
	}
	counters := []struct {
		field string
		v     int64
	}{
		{"resource.total_memory_bytes", res.TotalMemoryBytes},
		{"resource.used_memory_bytes", res.UsedMemoryBytes},
		{"resource.available_memory_bytes", res.AvailableMemoryBytes},
		{"resource.total_disk_bytes", res.TotalDiskBytes},
		{"resource.used_disk_bytes", res.UsedDiskBytes},
		{"resource.network_rx_bytes_per_sec", res.NetworkRxBytesPerSec},
		{"resource.network_tx_bytes_per_sec", res.NetworkTxBytesPerSec},
	}
	for _, c := range counters {
		if c.v < 0 {
			return invalid(c.field, fmt.Sprintf("must be >= 0, got %d", c.v))
		}
	}
	return nil
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
