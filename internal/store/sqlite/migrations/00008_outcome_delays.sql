-- Late outcomes (issue 12): what the campaign optimizer needs to count each
-- send by the probability that its outcome has arrived (engine/delay.go).
--
-- Per campaign_slots row (variant × hour of send), additive like the rest:
--   sent_at_sum   Σ (send time − slot start) in seconds: the mean send time
--   last_sent_at  the latest send time (micros; kept with a CASE max), so that
--                 the slot is known to show every delay up to now − last
--   delay_00 …    objective events of the slot's sends by the delay from the
--   delay_11      send to the event's receipt, in the buckets of
--                 engine.DelayEdges (< 5m, 15m, 30m, 1h, 2h, 4h, 8h, 16h, 24h,
--                 48h, 96h, ≥ 96h)
-- Rows from before this migration get the middle and the end of their hour
-- and no delays: a campaign without delays is counted as before (every send a
-- trial) until its first events arrive.
--
-- campaigns.split_pick is the variant a split_then_winner campaign sends to
-- after its test, chosen once on the matured counts ('' until then).
--
-- +goose Up
ALTER TABLE campaign_slots ADD COLUMN sent_at_sum DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN last_sent_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN delay_00 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN delay_01 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN delay_02 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN delay_03 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN delay_04 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN delay_05 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN delay_06 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN delay_07 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN delay_08 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN delay_09 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN delay_10 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_slots ADD COLUMN delay_11 BIGINT NOT NULL DEFAULT 0;
UPDATE campaign_slots SET sent_at_sum = sent * 1800.0, last_sent_at = slot + 3599999999;
ALTER TABLE campaigns ADD COLUMN split_pick TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE campaigns DROP COLUMN split_pick;
ALTER TABLE campaign_slots DROP COLUMN delay_11;
ALTER TABLE campaign_slots DROP COLUMN delay_10;
ALTER TABLE campaign_slots DROP COLUMN delay_09;
ALTER TABLE campaign_slots DROP COLUMN delay_08;
ALTER TABLE campaign_slots DROP COLUMN delay_07;
ALTER TABLE campaign_slots DROP COLUMN delay_06;
ALTER TABLE campaign_slots DROP COLUMN delay_05;
ALTER TABLE campaign_slots DROP COLUMN delay_04;
ALTER TABLE campaign_slots DROP COLUMN delay_03;
ALTER TABLE campaign_slots DROP COLUMN delay_02;
ALTER TABLE campaign_slots DROP COLUMN delay_01;
ALTER TABLE campaign_slots DROP COLUMN delay_00;
ALTER TABLE campaign_slots DROP COLUMN last_sent_at;
ALTER TABLE campaign_slots DROP COLUMN sent_at_sum;
