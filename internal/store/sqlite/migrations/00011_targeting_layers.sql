-- Targeting, breakdowns and layers (issue 15).
--
-- experiments.targeting   the experiment's rules (targeting.Rules as JSON),
--                         NULL when every unit may enter
-- experiments.layer_*     the layer the experiment belongs to (id and key:
--                         keys never change) and the range of the layer's
--                         hash space it holds, [layer_from, layer_to) in
--                         store.LayerSlots; an experiment holds its range
--                         until it is completed or archived
-- layers.version          bumped by every experiment created in the layer:
--                         the row lock that serialises range allocation
-- assignments.attributes  the attributes of the unit's first assignment (JSON)
-- assignments.segments    the breakdown segments the unit is counted in
--                         ({"country": "ES", "age": "(other)"}), so that its
--                         events go to the counters its assignment went to
-- segment_attributes,     which attributes and values an experiment counts,
-- segment_values          capped (store.MaxSegmentAttributes, MaxSegmentValues)
-- segment_counters        per (attribute, value, variant) the additive
--                         statistics of the breakdowns, kept at write time
--
-- +goose Up
CREATE TABLE layers (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    name         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    version      BIGINT NOT NULL DEFAULT 0,
    UNIQUE (workspace_id, key)
);
CREATE INDEX layers_workspace ON layers (workspace_id, id);

ALTER TABLE experiments ADD COLUMN targeting TEXT;
ALTER TABLE experiments ADD COLUMN layer_id TEXT; -- no foreign key: layers are never deleted, and SQLite cannot drop a column that has one
ALTER TABLE experiments ADD COLUMN layer_key TEXT NOT NULL DEFAULT '';
ALTER TABLE experiments ADD COLUMN layer_share DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE experiments ADD COLUMN layer_from BIGINT NOT NULL DEFAULT 0;
ALTER TABLE experiments ADD COLUMN layer_to BIGINT NOT NULL DEFAULT 0;
CREATE INDEX experiments_layer ON experiments (layer_id) WHERE layer_id IS NOT NULL;

ALTER TABLE assignments ADD COLUMN attributes TEXT;
ALTER TABLE assignments ADD COLUMN segments TEXT;

CREATE TABLE segment_attributes (
    experiment_id TEXT NOT NULL,
    attribute     TEXT NOT NULL,
    n_values      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, attribute)
) WITHOUT ROWID;

CREATE TABLE segment_values (
    experiment_id TEXT NOT NULL,
    attribute     TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (experiment_id, attribute, value)
) WITHOUT ROWID;

CREATE TABLE segment_counters (
    experiment_id TEXT NOT NULL,
    attribute     TEXT NOT NULL,
    value         TEXT NOT NULL,
    variant_id    TEXT NOT NULL,
    units         BIGINT NOT NULL DEFAULT 0,
    conversions   BIGINT NOT NULL DEFAULT 0,
    value_sum     DOUBLE PRECISION NOT NULL DEFAULT 0,
    value_sum_sq  DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, attribute, value, variant_id)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE segment_counters;
DROP TABLE segment_values;
DROP TABLE segment_attributes;
ALTER TABLE assignments DROP COLUMN segments;
ALTER TABLE assignments DROP COLUMN attributes;
DROP INDEX experiments_layer;
ALTER TABLE experiments DROP COLUMN layer_to;
ALTER TABLE experiments DROP COLUMN layer_from;
ALTER TABLE experiments DROP COLUMN layer_share;
ALTER TABLE experiments DROP COLUMN layer_key;
ALTER TABLE experiments DROP COLUMN layer_id;
ALTER TABLE experiments DROP COLUMN targeting;
DROP TABLE layers;
