-- Funnels: ordered steps, optional variants per step, the progress of each
-- unit through the steps, and the additive counters the results are computed
-- from. Same shape as the SQLite schema (see 00001_init.sql).
--
-- Results must cost O(steps × variants), not O(units): funnel_counters holds
-- per (step, variant) the units, the completions within the attribution
-- window and the advances to a later step; funnel_buckets the same units and
-- completions by the time slot in which the step was reached, so that the
-- units still inside their window ("open") are a sum over the last window's
-- slots; funnel_paths the units and completions per path of variants seen.
-- variant_id is '' for a step without variants.

-- +goose Up
CREATE TABLE funnels (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    name         TEXT NOT NULL,
    strategy     TEXT NOT NULL,
    status       TEXT NOT NULL,
    settings     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    started_at   BIGINT,
    completed_at BIGINT,
    UNIQUE (workspace_id, key)
);
CREATE INDEX funnels_workspace ON funnels (workspace_id, id);

CREATE TABLE funnel_steps (
    id        TEXT PRIMARY KEY,
    funnel_id TEXT NOT NULL REFERENCES funnels (id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    name      TEXT NOT NULL,
    position  INTEGER NOT NULL,
    winner    TEXT NOT NULL DEFAULT '',
    UNIQUE (funnel_id, key),
    UNIQUE (funnel_id, position)
);

CREATE TABLE funnel_variants (
    id        TEXT PRIMARY KEY,
    funnel_id TEXT NOT NULL,
    step      INTEGER NOT NULL,
    key       TEXT NOT NULL,
    name      TEXT NOT NULL,
    control   BOOLEAN NOT NULL,
    payload   TEXT NOT NULL,
    position  INTEGER NOT NULL,
    UNIQUE (funnel_id, step, key),
    FOREIGN KEY (funnel_id, step) REFERENCES funnel_steps (funnel_id, position) ON DELETE CASCADE
);

-- One row per unit that entered: where it got to, the path of variants it
-- has seen ("step:variant_id,…", in step order) and its completion.
CREATE TABLE funnel_units (
    funnel_id    TEXT NOT NULL,
    unit_id      TEXT NOT NULL,
    entered_at   BIGINT NOT NULL,
    max_step     INTEGER NOT NULL,
    path         TEXT NOT NULL,
    completed_at BIGINT,
    value        DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (funnel_id, unit_id)
);

-- One row per (unit, step reached): the sticky variant and when.
CREATE TABLE funnel_progress (
    funnel_id   TEXT NOT NULL,
    unit_id     TEXT NOT NULL,
    step        INTEGER NOT NULL,
    variant_id  TEXT NOT NULL,
    propensity  DOUBLE PRECISION NOT NULL,
    reached_at  BIGINT NOT NULL,
    advanced_at BIGINT,
    PRIMARY KEY (funnel_id, unit_id, step)
);

CREATE TABLE funnel_counters (
    funnel_id   TEXT NOT NULL,
    step        INTEGER NOT NULL,
    variant_id  TEXT NOT NULL,
    units       BIGINT NOT NULL DEFAULT 0,
    conversions BIGINT NOT NULL DEFAULT 0,
    advanced    BIGINT NOT NULL DEFAULT 0,
    late        BIGINT NOT NULL DEFAULT 0,
    value_sum   DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (funnel_id, step, variant_id)
);

CREATE TABLE funnel_buckets (
    funnel_id   TEXT NOT NULL,
    step        INTEGER NOT NULL,
    variant_id  TEXT NOT NULL,
    slot        BIGINT NOT NULL,
    units       BIGINT NOT NULL DEFAULT 0,
    conversions BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (funnel_id, step, variant_id, slot)
);

CREATE TABLE funnel_paths (
    funnel_id   TEXT NOT NULL,
    path        TEXT NOT NULL,
    units       BIGINT NOT NULL DEFAULT 0,
    conversions BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (funnel_id, path)
);

-- +goose Down
DROP TABLE funnel_paths;
DROP TABLE funnel_buckets;
DROP TABLE funnel_counters;
DROP TABLE funnel_progress;
DROP TABLE funnel_units;
DROP TABLE funnel_variants;
DROP TABLE funnel_steps;
DROP TABLE funnels;
