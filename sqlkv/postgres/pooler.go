package postgres

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/stdlib"
)

// Behind a transaction pooler (PgBouncer with pool_mode = transaction) each
// transaction, or each statement outside one, may run on a different server
// connection, so nothing may rely on session state: no named prepared
// statements (Debian's PgBouncer 1.18 does not track them), no LISTEN, no
// session advisory locks. The store supports it this way:
//
//   - A DSN whose default_query_exec_mode is exec or simple_protocol (pgx's
//     settings for "no named prepared statements") makes the store run its
//     statements unprepared: pgx then sends each as one Parse/Bind/Execute
//     of the unnamed statement (exec) or as text (simple_protocol), which a
//     pooler can move between server connections. With the default mode
//     (cache_statement) the store prepares its statements once per
//     connection, which is faster on a direct connection.
//   - LISTEN and the migrations' advisory lock use Options.ListenDSN, a
//     direct connection; a LISTEN connection that turns out to be pooled is
//     refused with ErrListenPooled.
//   - In the same mode a statement whose caller gives up is given
//     cutOffGrace to finish before its connection is closed (see
//     finishBeforeClosing), so that pgx sends the pooler no cancel request.

// ErrListenPooled means the connection for LISTEN goes through a connection
// pooler, where notifications would be lost (under transaction pooling
// the LISTEN runs on whichever server connection the pooler picked, and
// its notifications go to whoever holds that connection next). Returned by
// OpenWithOptions; give Options.ListenDSN a direct connection.
var ErrListenPooled = errors.New("postgres: the LISTEN connection goes through a connection pooler")

// ErrPreparedPooled means the DSN goes through a connection pooler but asks
// for named prepared statements (pgx's default), which a transaction
// pooler breaks. Returned by OpenWithOptions.
var ErrPreparedPooled = errors.New("postgres: the DSN goes through a connection pooler, where prepared statements do not work")

// unprepared reports whether cfg asks for no named prepared statements.
func unprepared(cfg *pgx.ConnConfig) bool {
	switch cfg.DefaultQueryExecMode {
	case pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol:
		return true
	}
	return false
}

// cutOffGrace is how long a statement on a pooled connection may go on after
// its context ends. SMS's statements take milliseconds; one that takes
// longer is stuck, and its connection is closed.
const cutOffGrace = 5 * time.Second

// finishBeforeClosing makes a connection made with cfg let a statement
// whose context ended run on for cutOffGrace before closing the connection.
// pgx's default closes it at once, and closing a connection mid-statement
// sends a cancel request on a second connection. PgBouncer before 1.20
// (Debian 12 ships 1.18) can exit with "server_proto: server in bad state"
// when a cancel request races with the server's answer (pgbouncer#822,
// fixed by pgbouncer#927), taking every client with it. A statement that
// finishes in the grace returns its result, and its connection stays in
// the pool.
func finishBeforeClosing(cfg *pgx.ConnConfig) {
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn(), DeadlineDelay: cutOffGrace}
	}
}

// unpreparedConnector makes database/sql's prepared statements plain query
// texts: Prepare sends nothing, and each execution runs the text in the
// connection's default_query_exec_mode.
type unpreparedConnector struct{ driver.Connector }

func (c unpreparedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return unpreparedConn{conn.(*stdlib.Conn)}, nil
}

// unpreparedConn is a pgx connection whose Prepare only remembers the text;
// every other method (transactions, reset, ping, value checks) is pgx's.
type unpreparedConn struct{ *stdlib.Conn }

func (c unpreparedConn) Prepare(query string) (driver.Stmt, error) {
	return unpreparedStmt{c.Conn, query}, nil
}

func (c unpreparedConn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	return unpreparedStmt{c.Conn, query}, nil
}

type unpreparedStmt struct {
	conn  *stdlib.Conn
	query string
}

func (s unpreparedStmt) Close() error  { return nil }
func (s unpreparedStmt) NumInput() int { return -1 } // pgx checks the arguments

func (s unpreparedStmt) Exec([]driver.Value) (driver.Result, error) {
	return nil, errors.New("postgres: Stmt.Exec without a context is not supported")
}

func (s unpreparedStmt) Query([]driver.Value) (driver.Rows, error) {
	return nil, errors.New("postgres: Stmt.Query without a context is not supported")
}

func (s unpreparedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.conn.ExecContext(ctx, s.query, args)
}

func (s unpreparedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.conn.QueryContext(ctx, s.query, args)
}

// checkDirect returns ErrListenPooled if conn is not a session of the server
// itself (see pooled).
func checkDirect(ctx context.Context, conn *pgx.Conn) error {
	pooled, detail, err := viaPooler(ctx, conn)
	if err != nil {
		return err
	}
	if pooled {
		return fmt.Errorf("%w (%s): use a direct connection for it", ErrListenPooled, detail)
	}
	return nil
}

// viaPooler reports whether conn goes through a connection pooler. A pooler
// answers the startup with a backend key of its own, so the process id it
// reports differs from the server's pg_backend_pid(); a plain TCP proxy
// passes the server's through.
func viaPooler(ctx context.Context, conn *pgx.Conn) (pooled bool, detail string, err error) {
	var pid uint32
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		return false, "", err
	}
	got := conn.PgConn().PID()
	return got != pid, fmt.Sprintf("the server's process is %d, the connection reports %d", pid, got), nil
}

// checkConnections checks, with one connection each, that the main DSN
// (cfg) can go through a pooler (no named prepared statements) if it does,
// and that direct, for LISTEN, does not. separate says direct is another
// DSN than cfg.
func checkConnections(ctx context.Context, cfg, direct *pgx.ConnConfig, separate bool) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	pooled, detail, err := viaPooler(ctx, conn)
	conn.Close(context.WithoutCancel(ctx))
	switch {
	case err != nil:
		return err
	case pooled && !unprepared(cfg):
		return fmt.Errorf("%w (%s): add default_query_exec_mode=exec to the DSN", ErrPreparedPooled, detail)
	case pooled && !separate:
		return fmt.Errorf("%w (%s): give a direct connection for it", ErrListenPooled, detail)
	case !separate:
		return nil
	}
	conn, err = pgx.ConnectConfig(ctx, direct)
	if err != nil {
		return fmt.Errorf("listen connection: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return checkDirect(ctx, conn)
}
