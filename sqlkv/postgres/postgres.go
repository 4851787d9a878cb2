// Package postgres is the Postgres backend of sqlkv, on pgx through
// database/sql. Several SMS replicas may share one database: migrations run
// under an advisory lock, and Apply runs at SERIALIZABLE isolation.
package postgres

//go:generate go run ../internal/sqlstore/publicgen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/spear-next/sms/migrations"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/internal/sqlstore"
)

// Pool sizes. Several replicas share the server's max_connections (100 by
// default), so each keeps a modest pool.
const (
	maxOpenConns    = 16
	maxIdleConns    = 16
	connMaxIdleTime = 5 * time.Minute
	connMaxLifetime = 30 * time.Minute
)

// Store is a sqlkv.Store in a Postgres database, with every fast path of
// package sqlkv (see store_gen.go), a change feed across processes (Watch,
// Fence) and the database's clock (Now). Its methods are described on
// sqlkv.Store and the optional interfaces.
type Store struct {
	store  *sqlstore.Store
	db     *sql.DB
	listen *listener // see Watch
}

// What the generated methods (store_gen.go) do not cover.
var (
	_ sqlkv.Watchable = (*Store)(nil)
	_ sqlkv.Fencer    = (*Store)(nil)
)

// Open connects to the database named by dsn (a postgres:// URL or key=value
// string as pgx accepts; search_path selects the schema), applies pending
// migrations under an advisory lock and returns the store. It returns an
// error wrapping sqlkv.ErrUnavailable when the server cannot be reached, and
// an error for a malformed dsn. Errors never contain the dsn's password.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return OpenWithOptions(ctx, dsn, Options{})
}

// Options tune a Postgres store. The zero value is what Open uses.
type Options struct {
	// SkipMigrations makes the store check the schema instead of migrating
	// it: opening fails with an error wrapping migrations.ErrPending if a
	// migration is not applied (run them with Migrations, as a deploy step).
	SkipMigrations bool
	// GroupLanes is how many groups of concurrent writes commit at once
	// (each in one transaction on one connection): 0 is the default (2),
	// negative turns group commit off. Outcomes are the same either way.
	GroupLanes int
	// ListenDSN is a direct connection to the same database, for what
	// needs a session of its own: the change feed's LISTEN and the
	// migrations' advisory lock. Empty means the main DSN. Set it when the
	// main DSN goes through a transaction pooler (see pooler.go).
	ListenDSN string
}

// OpenWithOptions is Open with options; it returns the same errors, and
// one wrapping migrations.ErrPending as described on Options.
func OpenWithOptions(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message quotes the dsn and may quote it unredacted inside
		// a wrapped url.Error: say only what is wrong with it.
		return nil, fmt.Errorf("postgres: cannot parse DSN %s", RedactDSN(dsn))
	}
	direct := cfg
	if opts.ListenDSN != "" {
		if direct, err = pgx.ParseConfig(opts.ListenDSN); err != nil {
			return nil, fmt.Errorf("postgres: cannot parse the listen DSN %s", RedactDSN(opts.ListenDSN))
		}
	}
	withKeepAlive(cfg)
	if direct != cfg {
		withKeepAlive(direct)
	}
	var db *sql.DB
	if unprepared(cfg) {
		finishBeforeClosing(cfg)
		db = sql.OpenDB(unpreparedConnector{stdlib.GetConnector(*cfg)})
	} else {
		db = stdlib.OpenDB(*cfg)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxIdleConns)
	db.SetConnMaxIdleTime(connMaxIdleTime)
	db.SetConnMaxLifetime(connMaxLifetime)
	d := dialect
	switch {
	case opts.GroupLanes < 0:
		d.GroupLanes = 0
	case opts.GroupLanes > 0:
		d.GroupLanes = opts.GroupLanes
	}
	s, err := open(ctx, d, db, cfg, direct, opts.ListenDSN != "", opts.SkipMigrations)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: open: %w", redact(redact(err, cfg.Password), direct.Password))
	}
	s.listen = newListener(direct)
	return s, nil
}

// Close stops listening for changes (ending every Watch subscription) and
// closes the store; see sqlkv.Store.
func (s *Store) Close() error {
	if s.listen != nil {
		s.listen.close()
	}
	return s.store.Close()
}

// open pings db (opened with db0), checks the pooler settings (see
// checkConnections), migrates (on its own pool of direct when separate, since
// the advisory lock needs a session) and prepares the store on db.
func open(ctx context.Context, d sqlstore.Dialect, db *sql.DB, db0, direct *pgx.ConnConfig, separate, skipMigrations bool) (*Store, error) {
	if err := db.PingContext(ctx); err != nil {
		return nil, translate(err)
	}
	if err := checkConnections(ctx, db0, direct, separate); err != nil {
		return nil, translate(err)
	}
	mdb := db
	if separate {
		mdb = stdlib.OpenDB(*direct)
		mdb.SetMaxOpenConns(2)
		defer mdb.Close()
	}
	if err := migrate(ctx, mdb, skipMigrations); err != nil {
		return nil, err
	}
	store, err := sqlstore.Open(ctx, d, db, db)
	if err != nil {
		return nil, err
	}
	return &Store{store: store, db: db}, nil
}

// migrate applies pending migrations on db, or checks there are none.
func migrate(ctx context.Context, db *sql.DB, skipMigrations bool) error {
	p, err := migrations.NewPostgresProvider(ctx, db)
	if err != nil {
		return translate(err)
	}
	if skipMigrations {
		if err := migrations.CheckCurrent(ctx, p); err != nil {
			return translate(err)
		}
	} else if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", translate(err))
	}
	return nil
}

var dialect = sqlstore.Dialect{
	Queries: queries,
	// LIMIT NULL is no limit.
	NoLimit:   nil,
	Translate: translate,
	Retryable: retryable,
	// A check that a key is absent locks nothing at READ COMMITTED, so two
	// Applys could each see the other's key absent and both commit (write
	// skew). SERIALIZABLE makes Postgres refuse such pairs (40001), and the
	// transaction is run again. Applys without a pure read keep READ
	// COMMITTED: their row locks suffice, and they never fail spuriously.
	CheckTx: &sql.TxOptions{Isolation: sql.LevelSerializable},
	// Two groups of concurrent writes commit at once, each in one
	// transaction: measured 2-5x the writes per second of one commit per
	// write at 16 clients, where every commit also takes the NOTIFY queue
	// lock (BENCHMARKS.md). One lane leaves the database idle while a group
	// commits, four gained nothing over two.
	GroupLanes: 2,
}

// TCP keepalive of every connection: an idle connection (the LISTEN one
// above all, which waits for notifications for hours) whose peer went
// silent is found dead after keepAliveIdle + keepAliveCount ×
// keepAliveInterval, 30 s, instead of pgx's default of 5 minutes before the
// first probe. Busy connections are bounded by their callers' deadlines.
const (
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3
)

func withKeepAlive(cfg *pgx.ConnConfig) {
	d := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount,
	}}
	cfg.DialFunc = d.DialContext
}

// errorsAsPg is errors.As for the Postgres server's errors.
func errorsAsPg(err error) (*pgconn.PgError, bool) {
	var pe *pgconn.PgError
	ok := errors.As(err, &pe)
	return pe, ok
}
