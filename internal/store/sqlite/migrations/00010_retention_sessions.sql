-- Operate (issue 14): retention and dashboard sessions in the database.
-- Same shape in both dialects (see 00001_init.sql).
--
-- Retention (internal/retention) deletes old rows in small batches by age,
-- so each table it prunes gets an index on the age it is pruned by; without
-- one every batch would scan the table. deliveries_event also serves the
-- cascade from outbox to deliveries, which PostgreSQL does not index by
-- itself.
--
-- campaign_event_keys gains created_at (when the key was first used, by the
-- server's clock) so that its keys expire like event_keys. Rows from before
-- this migration get the migration's time: they are kept for the whole
-- retention period from now, never dropped at the first run.
--
-- dashboard_sessions: one row per dashboard sign-in, shared by every replica.
-- token_hash is the SHA-256 of the cookie's token, never the token; sealed_key
-- is the signed-in API key encrypted under a key derived from the token
-- (internal/dashboard), so that neither a copy of the database nor a replica
-- without the browser's cookie can recover the API key. Sessions are capped
-- per API key (the oldest evicted, through sessions_key), and go when their
-- key row goes.
--
-- +goose Up
CREATE INDEX event_keys_created ON event_keys (created_at);
CREATE INDEX idempotency_created ON idempotency (created_at);
CREATE INDEX outbox_created ON outbox (created_at);
CREATE INDEX deliveries_created ON deliveries (created_at);
CREATE INDEX deliveries_event ON deliveries (event_id);
ALTER TABLE campaign_event_keys ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
UPDATE campaign_event_keys SET created_at = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER);
CREATE INDEX campaign_event_keys_created ON campaign_event_keys (created_at);

CREATE TABLE dashboard_sessions (
    token_hash   BLOB PRIMARY KEY,
    key_id       TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    sealed_key   BLOB NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
) WITHOUT ROWID;
CREATE INDEX dashboard_sessions_key ON dashboard_sessions (key_id, created_at);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);

-- +goose Down
DROP TABLE dashboard_sessions;
DROP INDEX campaign_event_keys_created;
ALTER TABLE campaign_event_keys DROP COLUMN created_at;
DROP INDEX deliveries_event;
DROP INDEX deliveries_created;
DROP INDEX outbox_created;
DROP INDEX idempotency_created;
DROP INDEX event_keys_created;
