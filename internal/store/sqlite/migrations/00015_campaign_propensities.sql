-- Campaign winners by the anytime-valid tests (docs/campaigns.md, "Decision"):
-- every send made in a random draw among two or more variants (a wave, a
-- split's test) stores the probability it had of getting its variant, and
-- campaign_slots gain, per (variant, hour of send), the sums the tests need
-- over those "tested" sends:
--   tested                       how many
--   test_sum, test_sum_sq        Σy, Σy² of the objective's outcome y (1 for
--                                an open or click, the value for a value
--                                objective)
--   inv_p, inv_p2                Σ1/p, Σ1/p²
--   y_inv_p, y_inv_p2, y2_inv_p2 Σy/p, Σy/p², Σy²/p²
--   expected, expected_squares, inv_expected
--                                Σw, Σw², Σ1/w over every tested send of the
--                                hour, of the probability w this variant had
-- Sends from before this migration have propensity 0: untested. A campaign
-- with such sends only declares no winner until tested sends decide it.
--
-- +goose Up
ALTER TABLE campaign_sends ADD COLUMN propensity DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN tested BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN test_sum DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN test_sum_sq DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN inv_p DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN inv_p2 DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN y_inv_p DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN y_inv_p2 DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN y2_inv_p2 DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN expected DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN expected_squares DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN inv_expected DOUBLE PRECISION NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE campaign_slots DROP COLUMN inv_expected;
ALTER TABLE campaign_slots DROP COLUMN expected_squares;
ALTER TABLE campaign_slots DROP COLUMN expected;
ALTER TABLE campaign_slots DROP COLUMN y2_inv_p2;
ALTER TABLE campaign_slots DROP COLUMN y_inv_p2;
ALTER TABLE campaign_slots DROP COLUMN y_inv_p;
ALTER TABLE campaign_slots DROP COLUMN inv_p2;
ALTER TABLE campaign_slots DROP COLUMN inv_p;
ALTER TABLE campaign_slots DROP COLUMN test_sum_sq;
ALTER TABLE campaign_slots DROP COLUMN test_sum;
ALTER TABLE campaign_slots DROP COLUMN tested;
ALTER TABLE campaign_sends DROP COLUMN propensity;
