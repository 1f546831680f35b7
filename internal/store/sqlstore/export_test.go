package sqlstore

// ReadStmts returns how many statements the read pool keeps prepared
// (readQuery).
func ReadStmts(s *Store) int {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	return len(s.readStmts)
}
