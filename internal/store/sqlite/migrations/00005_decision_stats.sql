-- Decisions you can trust (issue 11): the per-variant statistics of the
-- anytime-valid tests and of the revenue model, kept in counters only
-- (buckets are for charts). See engine.Arm for their meaning:
--   expected_sq            Σ w² of the logged weights (sequential SRM)
--   inv_expected           Σ 1/w of the logged weights (predictable variance of the tests)
--   inv_p … y2_inv_p2      inverse-propensity sums (tests valid under adaptive allocation)
--   positive … log_sum_sq  zero-inflated log-normal model of continuous metrics
--
-- experiments.no_difference_at records the no_difference decision once.
--
-- +goose Up
ALTER TABLE experiments ADD COLUMN no_difference_at BIGINT;
ALTER TABLE counters ADD COLUMN expected_sq DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN inv_expected DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN inv_p DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN inv_p2 DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN y_inv_p DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN y_inv_p2 DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN y2_inv_p2 DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN positive BIGINT NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN negative BIGINT NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN log_sum DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE counters ADD COLUMN log_sum_sq DOUBLE PRECISION NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE counters DROP COLUMN log_sum_sq;
ALTER TABLE counters DROP COLUMN log_sum;
ALTER TABLE counters DROP COLUMN negative;
ALTER TABLE counters DROP COLUMN positive;
ALTER TABLE counters DROP COLUMN y2_inv_p2;
ALTER TABLE counters DROP COLUMN y_inv_p2;
ALTER TABLE counters DROP COLUMN y_inv_p;
ALTER TABLE counters DROP COLUMN inv_p2;
ALTER TABLE counters DROP COLUMN inv_p;
ALTER TABLE counters DROP COLUMN inv_expected;
ALTER TABLE counters DROP COLUMN expected_sq;
ALTER TABLE experiments DROP COLUMN no_difference_at;
