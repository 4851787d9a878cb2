package records

import (
	"encoding/json"
	"fmt"
)

// The JSON format of SMS before records v2, kept for reading records that
// the migration has not rewritten yet and for the migration's down step.
// Each struct has exactly the fields of its record, so a record converts to
// and from it for free; the tags are the stored field names.

type nodeJSON struct {
	IP           string            `json:"ip"`
	Port         int32             `json:"p"`
	HTTPPort     int32             `json:"hp,omitempty"`
	Status       string            `json:"s"`
	RegisteredAt int64             `json:"r"`
	Metadata     map[string]string `json:"m,omitempty"`
}

type heartbeatJSON struct {
	LastHeartbeat int64             `json:"t"`
	HealthInfo    map[string]string `json:"h,omitempty"`
	Expired       bool              `json:"x,omitempty"`
}

type expiredJSON struct {
	At int64 `json:"t"`
}

type resourceJSON struct {
	CPU          float64           `json:"cpu,omitempty"`
	Mem          float64           `json:"mem,omitempty"`
	MemTotal     int64             `json:"mt,omitempty"`
	MemUsed      int64             `json:"mu,omitempty"`
	MemAvailable int64             `json:"ma,omitempty"`
	Disk         float64           `json:"disk,omitempty"`
	DiskTotal    int64             `json:"dt,omitempty"`
	DiskUsed     int64             `json:"du,omitempty"`
	NetRx        int64             `json:"rx,omitempty"`
	NetTx        int64             `json:"tx,omitempty"`
	Load1        float64           `json:"l1,omitempty"`
	Load5        float64           `json:"l5,omitempty"`
	Load15       float64           `json:"l15,omitempty"`
	UpdatedAt    int64             `json:"u"`
	Metadata     map[string]string `json:"m,omitempty"`
}

func decodeJSON(value []byte, v any) error {
	if err := json.Unmarshal(value, v); err != nil {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return nil
}

// appendJSON appends v as JSON. The records hold only strings, integers and
// finite floats (the registry validates them), which always marshal.
func appendJSON(b []byte, v any) []byte {
	j, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("records: marshal %T: %v", v, err))
	}
	return append(b, j...)
}

// AppendJSON appends n in the JSON format of SMS before records v2.
func (n *Node) AppendJSON(b []byte) []byte { return appendJSON(b, (*nodeJSON)(n)) }

// AppendJSON appends h in the JSON format of SMS before records v2.
func (h *Heartbeat) AppendJSON(b []byte) []byte { return appendJSON(b, (*heartbeatJSON)(h)) }

// AppendJSON appends e in the JSON format of SMS before records v2.
func (e *Expired) AppendJSON(b []byte) []byte { return appendJSON(b, (*expiredJSON)(e)) }

// AppendJSON appends r in the JSON format of SMS before records v2.
func (r *Resource) AppendJSON(b []byte) []byte { return appendJSON(b, (*resourceJSON)(r)) }
