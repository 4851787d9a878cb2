package postgres

import "database/sql"

// Dialect is the dialect, for the raw baseline benchmark.
var Dialect = dialect

// DB returns the store's connection pool.
func (s *Store) DB() *sql.DB { return s.db }
