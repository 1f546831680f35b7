-- Webhooks (issue 7): endpoints, the transactional outbox, deliveries and
-- their attempts. Same shape as the PostgreSQL schema (see 00001_init.sql).
--
-- An event is written to outbox in the transaction of the change that caused
-- it, and fanned out there into one deliveries row per subscribed endpoint, so
-- that a crash can neither lose an event nor announce a change that did not
-- commit. Workers lease due deliveries (lease_owner, lease_until) so that each
-- is attempted by one replica at a time. Secrets are sealed (internal/seal).
-- The number 00003 belongs to the campaign migration.

-- +goose Up
CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    enabled         BOOLEAN NOT NULL,
    disabled_reason TEXT NOT NULL DEFAULT '',
    key_id          TEXT NOT NULL,
    secret          BLOB NOT NULL,
    prev_key_id     TEXT NOT NULL DEFAULT '',
    prev_secret     BLOB,
    prev_until      BIGINT,
    failing_since   BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX webhooks_workspace ON webhooks (workspace_id, id);

-- One row per subscribed event type: the fan-out is a join, not a scan of
-- JSON lists.
CREATE TABLE webhook_events (
    webhook_id   TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    PRIMARY KEY (webhook_id, event_type)
) WITHOUT ROWID;
CREATE INDEX webhook_events_type ON webhook_events (workspace_id, event_type);

CREATE TABLE outbox (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    type         TEXT NOT NULL,
    data         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    workspace_id    TEXT NOT NULL,
    event_id        TEXT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    lease_owner     TEXT NOT NULL DEFAULT '',
    lease_until     BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (webhook_id, event_id)
);
-- Only pending deliveries have a next attempt: the index workers poll stays
-- as small as the backlog.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);

CREATE TABLE delivery_attempts (
    id          TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    at          BIGINT NOT NULL,
    status_code INTEGER NOT NULL,
    latency_us  BIGINT NOT NULL,
    error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, at);

-- Set once, conditionally, like the winner: experiment.srm_detected is
-- emitted by the one call that sets it.
ALTER TABLE experiments ADD COLUMN srm_alerted_at BIGINT;

-- +goose Down
ALTER TABLE experiments DROP COLUMN srm_alerted_at;
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
DROP TABLE outbox;
DROP TABLE webhook_events;
DROP TABLE webhooks;
