-- Funnel step winners by the anytime-valid tests (docs/funnels.md, "Winners"):
-- funnel_counters gain, per (step, variant), the inverse-propensity sums that
-- experiments' counters got in 00005, from the propensity funnel_progress
-- already stores for every unit and step:
--   inv_p, inv_p2            Σ1/p, Σ1/p² over the units that reached the step
--                            and saw the variant
--   conv_inv_p, conv_inv_p2  the same over those that completed within the
--                            window (the end-to-end outcome, multi_step)
--   adv_inv_p, adv_inv_p2    the same over those that advanced within it
--                            (per_step)
--   expected, expected_squares, inv_expected
--                            Σw, Σw², Σ1/w over every unit that reached the
--                            step, of the weight w the variant had then
-- Rows from before this migration have none: their steps stay without a
-- winner (the results say why) until the counters carry propensities for
-- every unit, as experiments' did.
--
-- +goose Up
ALTER TABLE funnel_counters ADD COLUMN inv_p DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE funnel_counters ADD COLUMN inv_p2 DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE funnel_counters ADD COLUMN conv_inv_p DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE funnel_counters ADD COLUMN conv_inv_p2 DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE funnel_counters ADD COLUMN adv_inv_p DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE funnel_counters ADD COLUMN adv_inv_p2 DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE funnel_counters ADD COLUMN expected DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE funnel_counters ADD COLUMN expected_squares DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE funnel_counters ADD COLUMN inv_expected DOUBLE PRECISION NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE funnel_counters DROP COLUMN inv_expected;
ALTER TABLE funnel_counters DROP COLUMN expected_squares;
ALTER TABLE funnel_counters DROP COLUMN expected;
ALTER TABLE funnel_counters DROP COLUMN adv_inv_p2;
ALTER TABLE funnel_counters DROP COLUMN adv_inv_p;
ALTER TABLE funnel_counters DROP COLUMN conv_inv_p2;
ALTER TABLE funnel_counters DROP COLUMN conv_inv_p;
ALTER TABLE funnel_counters DROP COLUMN inv_p2;
ALTER TABLE funnel_counters DROP COLUMN inv_p;
