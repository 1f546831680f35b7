-- The decision loop (issue 12): every replica evaluates running and paused
-- experiments, funnels and campaigns that have new data, and records what
-- they decide once among all replicas.
--
-- data_version counts the writes of data (assignments, events, funnel
-- progress, campaign sends and events) to an object, bumped by the
-- transaction that writes them on the row it locks anyway: a counter, not a
-- timestamp, so that neither clock skew between replicas nor a transaction
-- that commits after a later one can hide a write from the loop.
--
-- decide_leases holds one row per object the loop has seen: who evaluates it
-- now (lease_owner until lease_until), and the data_version and time of its
-- last evaluation. No foreign key: the object is in one of three tables
-- (ids carry their kind's prefix), and experiments are archived, never
-- deleted.
--
-- +goose Up
ALTER TABLE experiments ADD COLUMN data_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE funnels ADD COLUMN data_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN data_version BIGINT NOT NULL DEFAULT 0;
CREATE TABLE decide_leases (
    object_id         TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,
    lease_owner       TEXT NOT NULL DEFAULT '',
    lease_until       BIGINT NOT NULL DEFAULT 0,
    evaluated_version BIGINT NOT NULL DEFAULT -1,
    evaluated_at      BIGINT NOT NULL DEFAULT 0
);
-- The loop's scan reads only active objects.
CREATE INDEX experiments_active ON experiments (id) WHERE status IN ('running', 'paused');
CREATE INDEX funnels_active ON funnels (id) WHERE status IN ('running', 'paused');
CREATE INDEX campaigns_active ON campaigns (id) WHERE status IN ('running', 'paused');

-- +goose Down
DROP INDEX campaigns_active;
DROP INDEX funnels_active;
DROP INDEX experiments_active;
DROP TABLE decide_leases;
ALTER TABLE campaigns DROP COLUMN data_version;
ALTER TABLE funnels DROP COLUMN data_version;
ALTER TABLE experiments DROP COLUMN data_version;
