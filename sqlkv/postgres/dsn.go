package postgres

import (
	"net/url"
	"strings"
)

// WithSearchPath returns dsn, a postgres:// URL or a key=value connection
// string, with its search_path set to schema, so that a Store opened with it
// keeps its table in that schema (which must exist). pgx sends parameters it
// does not know itself as run-time parameters of each connection. A URL that
// does not parse is returned unchanged, and Open reports it.
func WithSearchPath(dsn, schema string) string {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
