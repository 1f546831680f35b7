// Package e2e holds end-to-end tests that run the real samplit binary as
// separate processes: a server killed with SIGKILL in the middle of a load
// and restarted over the same database must have kept every event and
// assignment it acknowledged (and nothing it never received), and three
// replicas over one PostgreSQL database must behave as one server.
//
// The package has no code of its own outside tests; the binary is built once
// per test run by TestMain. PostgreSQL tests need SAMPLIT_TEST_POSTGRES_URL
// (each test works in a fresh schema of that database); without it they are
// skipped, except under CI=true, where they fail.
package e2e
