-- Browser keys (issue 13): the origins from which an assign key may be used,
-- a JSON array of "scheme://host[:port]" strings ('[]' for every other key).
-- Same shape in both dialects. The number 00005 belongs to another change.

-- +goose Up
ALTER TABLE api_keys ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE api_keys DROP COLUMN allowed_origins;
