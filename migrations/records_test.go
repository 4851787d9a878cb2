package migrations_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/spear-next/sms/internal/records"
	"github.com/spear-next/sms/migrations"
)

// storedRow is a kv row as the test wrote it before the records migration.
type storedRow struct {
	key, value       []byte
	version, updated int64
}

// jsonRecords returns the rows an SMS before records v2 left behind: n nodes
// (more than the migration's page) with heartbeats and resource reports, an
// expired marker, a node a new replica already wrote as protobuf, and a key
// that is no registry record.
func jsonRecords(n int) []storedRow {
	var rows []storedRow
	add := func(key string, value []byte) {
		rows = append(rows, storedRow{key: []byte(key), value: value, version: int64(len(rows) + 1), updated: int64(1000 + len(rows))})
	}
	for i := range n {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		node := records.Node{IP: "10.0.0.1", Port: 8080, Status: "active", RegisteredAt: 1764000000000000000 + int64(i), Metadata: map[string]string{"zone": "a"}}
		add(records.NodePrefix+id, node.AppendJSON(nil))
		hb := records.Heartbeat{LastHeartbeat: 1764000000000000000 + int64(i), Expired: i%7 == 0}
		add(records.HeartbeatPrefix+id, hb.AppendJSON(nil))
		if i%2 == 0 {
			res := records.Resource{CPU: float64(i % 100), MemTotal: 64 << 30, UpdatedAt: 1764000000000000000}
			add(records.ResourcePrefix+id, res.AppendJSON(nil))
		}
	}
	add(records.ExpiredPrefix+"00000000-0000-4000-8000-999999999999", (&records.Expired{At: 1764000000000000000}).AppendJSON(nil))
	add(records.NodePrefix+"ffffffff-0000-4000-8000-000000000000", (&records.Node{IP: "10.0.0.9", Port: 1, Status: "inactive"}).AppendProto(nil))
	add("zzz:not-a-record", []byte(`{"keep":"me"}`))
	slices.SortFunc(rows, func(a, b storedRow) int { return bytes.Compare(a.key, b.key) })
	return rows
}

// testRecordsMigration writes JSON records into a database migrated to just
// before the records migration, migrates up (every record becomes
// protobuf with the same content, version and updated_at; other keys stay),
// then down (every record is the old JSON again, byte for byte).
func testRecordsMigration(t *testing.T, p *goose.Provider, db *sql.DB, insert string) {
	t.Helper()
	ctx := t.Context()
	if _, err := p.UpTo(ctx, migrations.RecordsVersion-1); err != nil {
		t.Fatal(err)
	}
	rows := jsonRecords(2500)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, insert, r.key, r.value, r.version, r.updated); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	got := readRows(t, db)
	if len(got) != len(rows) {
		t.Fatalf("after up: %d rows, want %d", len(got), len(rows))
	}
	for i, r := range rows {
		g := got[i]
		if !bytes.Equal(g.key, r.key) || g.version != r.version || g.updated != r.updated {
			t.Fatalf("after up: row %d = %q v%d u%d, want %q v%d u%d", i, g.key, g.version, g.updated, r.key, r.version, r.updated)
		}
		if string(r.key) == "zzz:not-a-record" {
			if !bytes.Equal(g.value, r.value) {
				t.Errorf("after up: %q = %q, want it untouched", g.key, g.value)
			}
			continue
		}
		if g.value[0] != records.FormatProto {
			t.Fatalf("after up: %q = %q, want protobuf", g.key, g.value)
		}
		sameRecord(t, r.key, g.value, r.value)
	}

	if _, err := p.Down(ctx); err != nil {
		t.Fatalf("down: %v", err)
	}
	if current, _ := p.GetDBVersion(ctx); current == migrations.RecordsVersion {
		t.Fatalf("after down: still at version %d", current)
	}
	back := readRows(t, db)
	for i, r := range rows {
		want := r.value
		if !records.IsJSON(want) {
			// The node a new replica wrote as protobuf goes back as JSON.
			want, _, _ = records.ToJSON(r.key, r.value)
		}
		if !bytes.Equal(back[i].value, want) || back[i].version != r.version {
			t.Fatalf("after down: %q = %s v%d, want %s v%d", r.key, back[i].value, back[i].version, want, r.version)
		}
	}
}

// sameRecord checks that two stored forms of the record at key decode to
// the same record.
func sameRecord(t *testing.T, key, a, b []byte) {
	t.Helper()
	decode := func(v []byte) (any, error) {
		switch {
		case bytes.HasPrefix(key, []byte(records.NodePrefix)):
			return records.DecodeNode(v)
		case bytes.HasPrefix(key, []byte(records.HeartbeatPrefix)):
			return records.DecodeHeartbeat(v)
		case bytes.HasPrefix(key, []byte(records.ResourcePrefix)):
			return records.DecodeResource(v)
		}
		return records.DecodeExpired(v)
	}
	ra, err := decode(a)
	if err != nil {
		t.Fatalf("%q: %v", key, err)
	}
	rb, err := decode(b)
	if err != nil {
		t.Fatalf("%q: %v", key, err)
	}
	if !reflect.DeepEqual(ra, rb) {
		t.Fatalf("%q: migrated record %+v, want %+v", key, ra, rb)
	}
}

func readRows(t *testing.T, db *sql.DB) []storedRow {
	t.Helper()
	rs, err := db.QueryContext(t.Context(), `SELECT key, value, version, updated_at FROM kv ORDER BY key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []storedRow
	for rs.Next() {
		var r storedRow
		if err := rs.Scan(&r.key, &r.value, &r.version, &r.updated); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSQLiteRecordsMigration(t *testing.T) {
	p, db := openSQLite(t)
	testRecordsMigration(t, p, db, `INSERT INTO kv (key, value, version, updated_at) VALUES (?1, ?2, ?3, ?4)`)
}

func TestPostgresRecordsMigration(t *testing.T) {
	p, db := openPostgres(t)
	testRecordsMigration(t, p, db, `INSERT INTO kv (key, value, version, updated_at) VALUES ($1, $2, $3, $4)`)
	// The rewrite disabled the change-notification trigger for itself only.
	var enabled string
	if err := db.QueryRowContext(t.Context(), `SELECT tgenabled FROM pg_trigger WHERE tgname = 'kv_notify' AND tgrelid = 'kv'::regclass`).Scan(&enabled); err != nil {
		t.Fatal(err)
	}
	if enabled != "O" {
		t.Errorf("kv_notify trigger tgenabled = %q, want O (enabled)", enabled)
	}
}
