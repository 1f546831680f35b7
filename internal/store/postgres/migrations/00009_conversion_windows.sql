-- Conversion windows (issue 12): what experiments with a conversion_window and
-- funnels need to count each unit by the probability that its outcome has
-- arrived (engine/delay.go), as campaign_slots do for campaigns (00008).
--
-- maturity_slots, per (experiment, variant, hour of assignment), kept only for
-- experiments with a conversion_window, additive like the other counters:
--   units          units assigned in the hour
--   assigned_sum   Σ (assignment time − hour start) in seconds: the mean
--                  assignment time
--   last_assigned  the latest assignment time (micros; kept with a CASE max)
--   conversions    units of the hour whose first outcome came inside the window
--   late           outcomes that came after the unit's window: stored as a
--                  count, never counted as conversions
--   delay_00 …     those first outcomes by the delay from the assignment to
--   delay_11       the event, in the buckets of engine.DelayEdges
--
-- funnel_buckets gain the same reach-time statistics (reached_sum,
-- last_reached) and the delay histogram from reaching the step to the
-- completion. Rows from before this migration have none (their slot's start
-- stands for their reach times) and no delays: the funnel is counted as before
-- (open units as not converted so far) until its first completions arrive.
--
-- +goose Up
CREATE TABLE maturity_slots (
    experiment_id TEXT NOT NULL,
    variant_id    TEXT NOT NULL,
    slot          BIGINT NOT NULL,
    units         BIGINT NOT NULL DEFAULT 0,
    assigned_sum  DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_assigned BIGINT NOT NULL DEFAULT 0,
    conversions   BIGINT NOT NULL DEFAULT 0,
    late          BIGINT NOT NULL DEFAULT 0,
    delay_00      BIGINT NOT NULL DEFAULT 0,
    delay_01      BIGINT NOT NULL DEFAULT 0,
    delay_02      BIGINT NOT NULL DEFAULT 0,
    delay_03      BIGINT NOT NULL DEFAULT 0,
    delay_04      BIGINT NOT NULL DEFAULT 0,
    delay_05      BIGINT NOT NULL DEFAULT 0,
    delay_06      BIGINT NOT NULL DEFAULT 0,
    delay_07      BIGINT NOT NULL DEFAULT 0,
    delay_08      BIGINT NOT NULL DEFAULT 0,
    delay_09      BIGINT NOT NULL DEFAULT 0,
    delay_10      BIGINT NOT NULL DEFAULT 0,
    delay_11      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_id, variant_id, slot),
    FOREIGN KEY (experiment_id, variant_id) REFERENCES variants (experiment_id, id) ON DELETE CASCADE
);
ALTER TABLE funnel_buckets ADD COLUMN reached_sum DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE funnel_buckets ADD COLUMN last_reached BIGINT NOT NULL DEFAULT 0;
ALTER TABLE funnel_buckets ADD COLUMN delay_00 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE funnel_buckets ADD COLUMN delay_01 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE funnel_buckets ADD COLUMN delay_02 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE funnel_buckets ADD COLUMN delay_03 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE funnel_buckets ADD COLUMN delay_04 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE funnel_buckets ADD COLUMN delay_05 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE funnel_buckets ADD COLUMN delay_06 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE funnel_buckets ADD COLUMN delay_07 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE funnel_buckets ADD COLUMN delay_08 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE funnel_buckets ADD COLUMN delay_09 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE funnel_buckets ADD COLUMN delay_10 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE funnel_buckets ADD COLUMN delay_11 BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE funnel_buckets DROP COLUMN delay_11;
ALTER TABLE funnel_buckets DROP COLUMN delay_10;
ALTER TABLE funnel_buckets DROP COLUMN delay_09;
ALTER TABLE funnel_buckets DROP COLUMN delay_08;
ALTER TABLE funnel_buckets DROP COLUMN delay_07;
ALTER TABLE funnel_buckets DROP COLUMN delay_06;
ALTER TABLE funnel_buckets DROP COLUMN delay_05;
ALTER TABLE funnel_buckets DROP COLUMN delay_04;
ALTER TABLE funnel_buckets DROP COLUMN delay_03;
ALTER TABLE funnel_buckets DROP COLUMN delay_02;
ALTER TABLE funnel_buckets DROP COLUMN delay_01;
ALTER TABLE funnel_buckets DROP COLUMN delay_00;
ALTER TABLE funnel_buckets DROP COLUMN last_reached;
ALTER TABLE funnel_buckets DROP COLUMN reached_sum;
DROP TABLE maturity_slots;
