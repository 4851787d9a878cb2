package migrations_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite"

	"github.com/spear-next/sms/migrations"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// upDownUp applies every migration, rolls all back, and applies them again,
// checking that the kv table comes and goes.
func upDownUp(t *testing.T, p *goose.Provider, db *sql.DB) {
	t.Helper()
	ctx := t.Context()
	hasKV := func() bool {
		_, err := db.ExecContext(ctx, "SELECT count(*) FROM kv")
		return err == nil
	}
	for _, step := range []string{"up", "down", "up"} {
		var err error
		if step == "up" {
			_, err = p.Up(ctx)
		} else {
			_, err = p.DownTo(ctx, 0)
		}
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		current, target, err := p.GetVersions(ctx)
		if err != nil {
			t.Fatalf("GetVersions after %s: %v", step, err)
		}
		want := target
		if step == "down" {
			want = 0
		}
		if current != want {
			t.Fatalf("after %s: version %d, want %d", step, current, want)
		}
		if got, want := hasKV(), step == "up"; got != want {
			t.Fatalf("after %s: kv table exists = %v, want %v", step, got, want)
		}
	}
	if pending, err := p.HasPending(ctx); err != nil || pending {
		t.Fatalf("HasPending = %v, %v; want false", pending, err)
	}
}

func TestSQLiteUpDownUp(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "kv.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := migrations.NewSQLiteProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	upDownUp(t, p, db)
}

func TestPostgresUpDownUp(t *testing.T) {
	cfg, err := pgx.ParseConfig(storetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	p, err := migrations.NewPostgresProvider(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	upDownUp(t, p, db)
}

func TestPostgresLockIDPerSchema(t *testing.T) {
	if migrations.LockID("a") == migrations.LockID("b") {
		t.Fatal("two schemas share a migration lock id")
	}
}
