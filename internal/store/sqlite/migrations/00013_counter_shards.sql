-- Sharded counter rows (issue 16); see the PostgreSQL migration of the same
-- number. SQLite has one writer, so its store writes shard 0 only
-- (store.Dialect.CounterShards = 1); the column is here so that both
-- databases run the same statements. SQLite cannot change a primary key in
-- place: each table is rebuilt, its rows copied as shard 0.
--
-- +goose Up
CREATE TABLE counters_sharded (
    experiment_id TEXT NOT NULL,
    variant_id    TEXT NOT NULL,
    shard         INTEGER NOT NULL DEFAULT 0,
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
    PRIMARY KEY (experiment_id, variant_id, shard),
    FOREIGN KEY (experiment_id, variant_id) REFERENCES variants (experiment_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO counters_sharded (experiment_id, variant_id, shard, units, conversions, value_sum, value_sum_sq, expected, expected_sq, inv_expected, inv_p, inv_p2, y_inv_p, y_inv_p2, y2_inv_p2, positive, negative, log_sum, log_sum_sq)
SELECT experiment_id, variant_id, 0, units, conversions, value_sum, value_sum_sq, expected, expected_sq, inv_expected, inv_p, inv_p2, y_inv_p, y_inv_p2, y2_inv_p2, positive, negative, log_sum, log_sum_sq FROM counters;
DROP TABLE counters;
ALTER TABLE counters_sharded RENAME TO counters;

CREATE TABLE buckets_sharded (
    experiment_id TEXT NOT NULL,
    variant_id    TEXT NOT NULL,
    hour          BIGINT NOT NULL,
    shard         INTEGER NOT NULL DEFAULT 0,
    units         BIGINT NOT NULL DEFAULT 0,
    conversions   BIGINT NOT NULL DEFAULT 0,
    value_sum     DOUBLE PRECISION NOT NULL DEFAULT 0,
    value_sum_sq  DOUBLE PRECISION NOT NULL DEFAULT 0,
    expected      DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, variant_id, hour, shard),
    FOREIGN KEY (experiment_id, variant_id) REFERENCES variants (experiment_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO buckets_sharded (experiment_id, variant_id, hour, shard, units, conversions, value_sum, value_sum_sq, expected)
SELECT experiment_id, variant_id, hour, 0, units, conversions, value_sum, value_sum_sq, expected FROM buckets;
DROP TABLE buckets;
ALTER TABLE buckets_sharded RENAME TO buckets;
CREATE INDEX buckets_hour ON buckets (experiment_id, hour);

CREATE TABLE metric_counters_sharded (
    metric_id     TEXT NOT NULL REFERENCES experiment_metrics (id) ON DELETE CASCADE,
    variant_id    TEXT NOT NULL,
    shard         INTEGER NOT NULL DEFAULT 0,
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
    PRIMARY KEY (metric_id, variant_id, shard)
) WITHOUT ROWID;
INSERT INTO metric_counters_sharded (metric_id, variant_id, shard, units, conversions, value_sum, value_sum_sq, expected, expected_sq, inv_expected, inv_p, inv_p2, y_inv_p, y_inv_p2, y2_inv_p2, positive, negative, log_sum, log_sum_sq)
SELECT metric_id, variant_id, 0, units, conversions, value_sum, value_sum_sq, expected, expected_sq, inv_expected, inv_p, inv_p2, y_inv_p, y_inv_p2, y2_inv_p2, positive, negative, log_sum, log_sum_sq FROM metric_counters;
DROP TABLE metric_counters;
ALTER TABLE metric_counters_sharded RENAME TO metric_counters;

-- +goose Down
CREATE TABLE counters_one (
    experiment_id TEXT NOT NULL,
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
    PRIMARY KEY (experiment_id, variant_id),
    FOREIGN KEY (experiment_id, variant_id) REFERENCES variants (experiment_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO counters_one (experiment_id, variant_id, units, conversions, value_sum, value_sum_sq, expected, expected_sq, inv_expected, inv_p, inv_p2, y_inv_p, y_inv_p2, y2_inv_p2, positive, negative, log_sum, log_sum_sq)
SELECT experiment_id, variant_id, SUM(units), SUM(conversions), SUM(value_sum), SUM(value_sum_sq), SUM(expected), SUM(expected_sq), SUM(inv_expected), SUM(inv_p), SUM(inv_p2), SUM(y_inv_p), SUM(y_inv_p2), SUM(y2_inv_p2), SUM(positive), SUM(negative), SUM(log_sum), SUM(log_sum_sq) FROM counters GROUP BY experiment_id, variant_id;
DROP TABLE counters;
ALTER TABLE counters_one RENAME TO counters;

CREATE TABLE buckets_one (
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
INSERT INTO buckets_one (experiment_id, variant_id, hour, units, conversions, value_sum, value_sum_sq, expected)
SELECT experiment_id, variant_id, hour, SUM(units), SUM(conversions), SUM(value_sum), SUM(value_sum_sq), SUM(expected) FROM buckets GROUP BY experiment_id, variant_id, hour;
DROP TABLE buckets;
ALTER TABLE buckets_one RENAME TO buckets;
CREATE INDEX buckets_hour ON buckets (experiment_id, hour);

CREATE TABLE metric_counters_one (
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
INSERT INTO metric_counters_one (metric_id, variant_id, units, conversions, value_sum, value_sum_sq, expected, expected_sq, inv_expected, inv_p, inv_p2, y_inv_p, y_inv_p2, y2_inv_p2, positive, negative, log_sum, log_sum_sq)
SELECT metric_id, variant_id, SUM(units), SUM(conversions), SUM(value_sum), SUM(value_sum_sq), SUM(expected), SUM(expected_sq), SUM(inv_expected), SUM(inv_p), SUM(inv_p2), SUM(y_inv_p), SUM(y_inv_p2), SUM(y2_inv_p2), SUM(positive), SUM(negative), SUM(log_sum), SUM(log_sum_sq) FROM metric_counters GROUP BY metric_id, variant_id;
DROP TABLE metric_counters;
ALTER TABLE metric_counters_one RENAME TO metric_counters;
