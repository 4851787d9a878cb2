package sqlite

// WriterPragma returns PRAGMA name as the writer connection sees it.
func (s *Store) WriterPragma(name string) string { return pragma(s, true, name) }

// ReaderPragma returns PRAGMA name as a reader connection sees it.
func (s *Store) ReaderPragma(name string) string { return pragma(s, false, name) }

func pragma(s *Store, writer bool, name string) string {
	db := s.reader
	if writer {
		db = s.writer
	}
	var v string
	if err := db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		return "error: " + err.Error()
	}
	return v
}
