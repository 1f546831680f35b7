-- A funnel step's no_difference decision (docs/funnels.md, "Winners"),
-- recorded once as an experiment's is (experiments.no_difference_at): when
-- it was first recorded, NULL while it has not been.
--
-- +goose Up
ALTER TABLE funnel_steps ADD COLUMN no_difference_at BIGINT;

-- +goose Down
ALTER TABLE funnel_steps DROP COLUMN no_difference_at;
