-- Campaigns: email and push campaigns, their variants, one row per recipient
-- sent (the sticky variant and what the recipient did), the events as they
-- came, and the additive counters the results are computed from. Same shape
-- as the SQLite schema (see 00001_init.sql).
--
-- Results must cost O(variants × hours), not O(recipients): campaign_slots
-- holds per (variant, hour of send) the sends and what they did, rewards
-- credited to the hour of their send (discounting by send age needs that),
-- and campaign_waves the sends per (wave, variant).

-- +goose Up
CREATE TABLE campaigns (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    name          TEXT NOT NULL,
    channel       TEXT NOT NULL,
    objective     TEXT NOT NULL,
    mode          TEXT NOT NULL,
    audience_size BIGINT NOT NULL,
    status        TEXT NOT NULL,
    settings      TEXT NOT NULL,
    winner        TEXT NOT NULL DEFAULT '',
    sent          BIGINT NOT NULL DEFAULT 0,
    waves         BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    started_at    BIGINT,
    completed_at  BIGINT,
    UNIQUE (workspace_id, key)
);
CREATE INDEX campaigns_workspace ON campaigns (workspace_id, id);

CREATE TABLE campaign_variants (
    id          TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    name        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    position    INTEGER NOT NULL,
    stopped_at  BIGINT,
    UNIQUE (campaign_id, key)
);

-- One row per recipient sent. The *_at columns record the first event of
-- each type that came within the attribution window (implied ones
-- included: a click sets opened_at and delivered_at).
CREATE TABLE campaign_sends (
    campaign_id     TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    variant_id      TEXT NOT NULL,
    wave            BIGINT NOT NULL,
    sent_at         BIGINT NOT NULL,
    delivered_at    BIGINT,
    opened_at       BIGINT,
    clicked_at      BIGINT,
    unsubscribed_at BIGINT,
    bounced_at      BIGINT,
    converted_at    BIGINT,
    value           DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, recipient)
);

-- Every accepted event, counted or late.
CREATE TABLE campaign_events (
    campaign_id TEXT NOT NULL,
    id          TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    type        TEXT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    at          BIGINT NOT NULL,
    counted     BOOLEAN NOT NULL,
    PRIMARY KEY (campaign_id, id)
);

CREATE TABLE campaign_event_keys (
    campaign_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    PRIMARY KEY (campaign_id, key)
);

CREATE TABLE campaign_slots (
    campaign_id   TEXT NOT NULL,
    variant_id    TEXT NOT NULL,
    slot          BIGINT NOT NULL,
    sent          BIGINT NOT NULL DEFAULT 0,
    delivered     BIGINT NOT NULL DEFAULT 0,
    opens         BIGINT NOT NULL DEFAULT 0,
    clicks        BIGINT NOT NULL DEFAULT 0,
    unsubscribes  BIGINT NOT NULL DEFAULT 0,
    bounces       BIGINT NOT NULL DEFAULT 0,
    conversions   BIGINT NOT NULL DEFAULT 0,
    value_sum     DOUBLE PRECISION NOT NULL DEFAULT 0,
    value_sum_sq  DOUBLE PRECISION NOT NULL DEFAULT 0,
    late          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, variant_id, slot)
);

CREATE TABLE campaign_waves (
    campaign_id TEXT NOT NULL,
    wave        BIGINT NOT NULL,
    variant_id  TEXT NOT NULL,
    sends       BIGINT NOT NULL DEFAULT 0,
    at          BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, wave, variant_id)
);

-- +goose Down
DROP TABLE campaign_waves;
DROP TABLE campaign_slots;
DROP TABLE campaign_event_keys;
DROP TABLE campaign_events;
DROP TABLE campaign_sends;
DROP TABLE campaign_variants;
DROP TABLE campaigns;
