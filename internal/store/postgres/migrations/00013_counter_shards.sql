-- Sharded counter rows (issue 16). Every write of an experiment's counters
-- used to update one row per variant (and per variant and hour in buckets),
-- so the transactions of several replicas queued on those row locks until
-- each one's commit. A transaction now adds its increments to one of a few
-- rows per variant, its shard, picked at random (store.Dialect
-- .CounterShards); readers sum the shards. Existing rows become shard 0.
--
-- +goose Up
ALTER TABLE counters ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE counters DROP CONSTRAINT counters_pkey;
ALTER TABLE counters ADD PRIMARY KEY (experiment_id, variant_id, shard);

ALTER TABLE buckets ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE buckets DROP CONSTRAINT buckets_pkey;
ALTER TABLE buckets ADD PRIMARY KEY (experiment_id, variant_id, hour, shard);

ALTER TABLE metric_counters ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE metric_counters DROP CONSTRAINT metric_counters_pkey;
ALTER TABLE metric_counters ADD PRIMARY KEY (metric_id, variant_id, shard);

-- +goose Down
-- Each table's shards are folded into one row (shard -1, then 0) before
-- the shard leaves the key.
INSERT INTO counters (experiment_id, variant_id, shard, units, conversions, value_sum, value_sum_sq, expected,
    expected_sq, inv_expected, inv_p, inv_p2, y_inv_p, y_inv_p2, y2_inv_p2, positive, negative, log_sum, log_sum_sq)
SELECT experiment_id, variant_id, -1, SUM(units), SUM(conversions), SUM(value_sum), SUM(value_sum_sq), SUM(expected),
    SUM(expected_sq), SUM(inv_expected), SUM(inv_p), SUM(inv_p2), SUM(y_inv_p), SUM(y_inv_p2), SUM(y2_inv_p2),
    SUM(positive), SUM(negative), SUM(log_sum), SUM(log_sum_sq)
FROM counters GROUP BY experiment_id, variant_id;
DELETE FROM counters WHERE shard <> -1;
UPDATE counters SET shard = 0;
ALTER TABLE counters DROP CONSTRAINT counters_pkey;
ALTER TABLE counters ADD PRIMARY KEY (experiment_id, variant_id);
ALTER TABLE counters DROP COLUMN shard;

INSERT INTO buckets (experiment_id, variant_id, hour, shard, units, conversions, value_sum, value_sum_sq, expected)
SELECT experiment_id, variant_id, hour, -1, SUM(units), SUM(conversions), SUM(value_sum), SUM(value_sum_sq), SUM(expected)
FROM buckets GROUP BY experiment_id, variant_id, hour;
DELETE FROM buckets WHERE shard <> -1;
UPDATE buckets SET shard = 0;
ALTER TABLE buckets DROP CONSTRAINT buckets_pkey;
ALTER TABLE buckets ADD PRIMARY KEY (experiment_id, variant_id, hour);
ALTER TABLE buckets DROP COLUMN shard;

INSERT INTO metric_counters (metric_id, variant_id, shard, units, conversions, value_sum, value_sum_sq, expected,
    expected_sq, inv_expected, inv_p, inv_p2, y_inv_p, y_inv_p2, y2_inv_p2, positive, negative, log_sum, log_sum_sq)
SELECT metric_id, variant_id, -1, SUM(units), SUM(conversions), SUM(value_sum), SUM(value_sum_sq), SUM(expected),
    SUM(expected_sq), SUM(inv_expected), SUM(inv_p), SUM(inv_p2), SUM(y_inv_p), SUM(y_inv_p2), SUM(y2_inv_p2),
    SUM(positive), SUM(negative), SUM(log_sum), SUM(log_sum_sq)
FROM metric_counters GROUP BY metric_id, variant_id;
DELETE FROM metric_counters WHERE shard <> -1;
UPDATE metric_counters SET shard = 0;
ALTER TABLE metric_counters DROP CONSTRAINT metric_counters_pkey;
ALTER TABLE metric_counters ADD PRIMARY KEY (metric_id, variant_id);
ALTER TABLE metric_counters DROP COLUMN shard;
