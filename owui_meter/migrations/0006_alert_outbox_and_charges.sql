-- Budget alerts waiting for the webhook. Written in the same transaction that marks the alert
-- sent (alerts_sent), so a restart, or a CLI command that records answers with no worker
-- running, never loses one; the alerts worker of `serve` posts them in order and deletes each
-- once the webhook took it.
CREATE TABLE alert_outbox (
    id          INTEGER PRIMARY KEY,
    created     INTEGER NOT NULL,
    user_id     TEXT NOT NULL,             -- whom the message names ('' for shared budgets): erasure drops it
    message     TEXT NOT NULL,             -- the webhook's JSON body
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try    INTEGER NOT NULL,
    last_error  TEXT
);

-- What an answer cost, split by who charges it. OpenRouter's charge is what GET /key counts (for a
-- bring-your-own-key answer only OpenRouter's fee); the provider's charge is what a BYOK provider
-- bills the team directly. events.cost_nano stays the answer's cost to the team: OpenRouter's
-- charge plus the provider's, or OpenRouter's alone with METER_BYOK_COST=fee.
ALTER TABLE events ADD COLUMN openrouter_nano INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN provider_nano INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN byok INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN inline_provider_nano INTEGER;      -- the provider's charge the chat reported (BYOK)
ALTER TABLE events ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;  -- stopped by the user: billed for what was generated
ALTER TABLE events ADD COLUMN cache_discount_nano INTEGER;       -- saved by prompt caching (negative: cache writes cost more)
UPDATE events SET openrouter_nano = cost_nano;  -- every answer so far was counted as OpenRouter's charge

ALTER TABLE generations ADD COLUMN upstream_cost_nano INTEGER;   -- upstream_inference_cost
ALTER TABLE generations ADD COLUMN byok INTEGER;
ALTER TABLE generations ADD COLUMN cancelled INTEGER;
ALTER TABLE generations ADD COLUMN cache_discount_nano INTEGER;

-- the split per day, so statements and charts show it after retention pruned the answers
ALTER TABLE usage_daily ADD COLUMN provider_cost_nano INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN cache_discount_nano INTEGER NOT NULL DEFAULT 0;
CREATE INDEX usage_daily_split ON usage_daily (day, model) WHERE provider_cost_nano != 0 OR cache_discount_nano != 0;
