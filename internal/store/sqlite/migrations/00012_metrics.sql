-- Several metrics per experiment (issue 15). The primary metric keeps its
-- tables (assignments, event_keys, counters); every other metric has:
--   experiment_metrics   its definition: key (unique in the experiment),
--                        type (binary | continuous), role (secondary |
--                        guardrail), direction (increase | decrease) and,
--                        for a guardrail, max_degradation (relative to the
--                        control)
--   metric_units         per unit that has an event of the metric: its
--                        variant and propensity (copied from the assignment)
--                        and its outcome (value_sum, event_count,
--                        converted_at), as assignments has for the primary
--   metric_event_keys    the metric's idempotency keys
--   metric_counters      per variant, the outcome statistics (engine.Arm);
--                        the unit statistics (units, propensity sums) are
--                        the primary counters', shared by every metric
-- guardrail_trips records, once, each variant a guardrail stopped.
--
-- +goose Up
CREATE TABLE experiment_metrics (
    id              TEXT PRIMARY KEY,
    experiment_id   TEXT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    key             TEXT NOT NULL,
    position        INTEGER NOT NULL,
    type            TEXT NOT NULL,
    role            TEXT NOT NULL,
    direction       TEXT NOT NULL,
    max_degradation DOUBLE PRECISION NOT NULL DEFAULT 0,
    UNIQUE (experiment_id, key)
);

CREATE TABLE metric_units (
    metric_id    TEXT NOT NULL REFERENCES experiment_metrics (id) ON DELETE CASCADE,
    unit_id      TEXT NOT NULL,
    variant_id   TEXT NOT NULL,
    propensity   DOUBLE PRECISION NOT NULL,
    converted_at BIGINT,
    value_sum    DOUBLE PRECISION NOT NULL DEFAULT 0,
    event_count  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (metric_id, unit_id)
) WITHOUT ROWID;

CREATE TABLE metric_event_keys (
    metric_id       TEXT NOT NULL REFERENCES experiment_metrics (id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (metric_id, idempotency_key)
) WITHOUT ROWID;

CREATE TABLE metric_counters (
    metric_id     TEXT NOT NULL REFERENCES experiment_metrics (id) ON DELETE CASCADE,
    variant_id    TEXT NOT NULL,
    units         BIGINT NOT NULL DEFAULT 0,
    conversions   BIGINT NOT NULL DEFAULT 0,
    value_sum     DOUBLE PRECISION NOT NULL DEFAULT 0,
    value_sum_sq  DOUBLE PRECISION NOT NULL DEFAULT 0,
    expected      DOUBLE PRECISION NOT NULL DEFAULT 0,
    expected_sq   DOUBLE PRECISION NOT NULL DEFAULT 0,
    inv_expected  DOUBLE PRECISION NOT NULL DEFAULT 0,
    inv_p         DOUBLE PRECISION NOT NULL DEFAULT 0,
    inv_p2        DOUBLE PRECISION NOT NULL DEFAULT 0,
    y_inv_p       DOUBLE PRECISION NOT NULL DEFAULT 0,
    y_inv_p2      DOUBLE PRECISION NOT NULL DEFAULT 0,
    y2_inv_p2     DOUBLE PRECISION NOT NULL DEFAULT 0,
    positive      BIGINT NOT NULL DEFAULT 0,
    negative      BIGINT NOT NULL DEFAULT 0,
    log_sum       DOUBLE PRECISION NOT NULL DEFAULT 0,
    log_sum_sq    DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (metric_id, variant_id)
) WITHOUT ROWID;

CREATE TABLE guardrail_trips (
    experiment_id TEXT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    variant_id    TEXT NOT NULL,
    metric        TEXT NOT NULL,
    reason        TEXT NOT NULL,
    tripped_at    BIGINT NOT NULL,
    PRIMARY KEY (experiment_id, variant_id)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE guardrail_trips;
DROP TABLE metric_counters;
DROP TABLE metric_event_keys;
DROP TABLE metric_units;
DROP TABLE experiment_metrics;
