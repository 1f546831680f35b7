-- A campaign's no_difference decision (docs/campaigns.md, "Decision"),
-- recorded once as an experiment's and a funnel step's are: when it was
-- first recorded, NULL while it has not been.
--
-- +goose Up
ALTER TABLE campaigns ADD COLUMN no_difference_at BIGINT;

-- +goose Down
ALTER TABLE campaigns DROP COLUMN no_difference_at;
