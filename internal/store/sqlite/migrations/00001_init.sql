-- The initial schema. Timestamps are BIGINT unix microseconds UTC, ids are
-- application-generated text, settings are JSON text: the same shape as the
-- PostgreSQL schema, so that internal/store/sqlstore runs the same SQL on both.
-- Tables keyed by a composite text primary key are WITHOUT ROWID: the row lives
-- in the primary-key b-tree, which saves a second lookup and space.

-- +goose Up
CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL,
    lookup       TEXT NOT NULL UNIQUE,
    hash         BLOB NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, id);

CREATE TABLE experiments (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    metric       TEXT NOT NULL,
    strategy     TEXT NOT NULL,
    status       TEXT NOT NULL,
    settings     TEXT NOT NULL,
    winner       TEXT NOT NULL DEFAULT '',
    winner_fixed BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    started_at   BIGINT,
    completed_at BIGINT,
    UNIQUE (workspace_id, key)
);
CREATE INDEX experiments_workspace ON experiments (workspace_id, id);

CREATE TABLE variants (
    id            TEXT PRIMARY KEY,
    experiment_id TEXT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    name          TEXT NOT NULL,
    control       BOOLEAN NOT NULL,
    payload       TEXT NOT NULL,
    position      INTEGER NOT NULL,
    UNIQUE (experiment_id, key),
    -- The target of the composite foreign keys below: a row that names a
    -- variant must name one of its own experiment.
    UNIQUE (experiment_id, id)
);

CREATE TABLE assignments (
    experiment_id TEXT NOT NULL,
    unit_id       TEXT NOT NULL,
    variant_id    TEXT NOT NULL,
    propensity    DOUBLE PRECISION NOT NULL,
    epoch         BIGINT NOT NULL,
    assigned_at   BIGINT NOT NULL,
    converted_at  BIGINT,
    value_sum     DOUBLE PRECISION NOT NULL DEFAULT 0,
    event_count   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, unit_id),
    FOREIGN KEY (experiment_id, variant_id) REFERENCES variants (experiment_id, id) ON DELETE CASCADE
) WITHOUT ROWID;

-- No foreign key to experiments: RecordEvents has just locked the
-- experiment's row, and checking a key against a row the transaction itself
-- updated costs PostgreSQL a tuple lock per key (a tenth of a millisecond
-- each, most of a 1000-event batch). Experiments are archived, never deleted.
CREATE TABLE event_keys (
    experiment_id   TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (experiment_id, idempotency_key)
) WITHOUT ROWID;

CREATE TABLE counters (
    experiment_id TEXT NOT NULL,
    variant_id    TEXT NOT NULL,
    units         BIGINT NOT NULL DEFAULT 0,
    conversions   BIGINT NOT NULL DEFAULT 0,
    value_sum     DOUBLE PRECISION NOT NULL DEFAULT 0,
    value_sum_sq  DOUBLE PRECISION NOT NULL DEFAULT 0,
    expected      DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, variant_id),
    FOREIGN KEY (experiment_id, variant_id) REFERENCES variants (experiment_id, id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE buckets (
    experiment_id TEXT NOT NULL,
    variant_id    TEXT NOT NULL,
    hour          BIGINT NOT NULL,
    units         BIGINT NOT NULL DEFAULT 0,
    conversions   BIGINT NOT NULL DEFAULT 0,
    value_sum     DOUBLE PRECISION NOT NULL DEFAULT 0,
    value_sum_sq  DOUBLE PRECISION NOT NULL DEFAULT 0,
    expected      DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, variant_id, hour),
    FOREIGN KEY (experiment_id, variant_id) REFERENCES variants (experiment_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX buckets_hour ON buckets (experiment_id, hour);

CREATE TABLE states (
    experiment_id TEXT PRIMARY KEY REFERENCES experiments (id) ON DELETE CASCADE,
    key_id        TEXT NOT NULL,
    blob          BLOB NOT NULL,
    version       BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE idempotency (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    done         BOOLEAN NOT NULL DEFAULT FALSE,
    status       INTEGER NOT NULL DEFAULT 0,
    body         BLOB,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, key)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE idempotency;
DROP TABLE states;
DROP TABLE buckets;
DROP TABLE counters;
DROP TABLE event_keys;
DROP TABLE assignments;
DROP TABLE variants;
DROP TABLE experiments;
DROP TABLE api_keys;
DROP TABLE workspaces;
