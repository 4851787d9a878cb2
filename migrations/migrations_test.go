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

// openSQLite returns a new SQLite file's database, closed when t ends, and
// its migrations provider.
func openSQLite(t *testing.T) (*goose.Provider, *sql.DB) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "kv.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	p, err := migrations.NewSQLiteProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	return p, db
}

// openPostgres returns a database in a fresh schema (see
// storetest.PostgresDSN, which may skip t), closed when t ends, and its
// migrations provider.
func openPostgres(t *testing.T) (*goose.Provider, *sql.DB) {
	t.Helper()
	cfg, err := pgx.ParseConfig(storetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	p, err := migrations.NewPostgresProvider(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	return p, db
}

func TestSQLiteUpDownUp(t *testing.T) {
	p, db := openSQLite(t)
	upDownUp(t, p, db)
}

func TestPostgresUpDownUp(t *testing.T) {
	p, db := openPostgres(t)
	upDownUp(t, p, db)
}

func TestPostgresLockIDPerSchema(t *testing.T) {
	if migrations.LockID("a") == migrations.LockID("b") {
		t.Fatal("two schemas share a migration lock id")
	}
}
