-- Prices per token, in pico-USD (1e-12 USD) so OpenRouter's string prices stay exact.
-- source 'openrouter' rows come from the /models sync; 'admin' rows are set by an admin and win.
CREATE TABLE prices (
    model            TEXT NOT NULL,
    source           TEXT NOT NULL CHECK (source IN ('openrouter', 'admin')),
    prompt_pico      INTEGER NOT NULL DEFAULT 0,   -- per input token
    completion_pico  INTEGER NOT NULL DEFAULT 0,   -- per output token
    reasoning_pico   INTEGER,                      -- per reasoning token (NULL: as completion)
    cache_read_pico  INTEGER,                      -- per cached input token (NULL: as prompt)
    request_pico     INTEGER NOT NULL DEFAULT 0,   -- per request
    name             TEXT,
    updated          INTEGER NOT NULL,
    PRIMARY KEY (model, source)
) WITHOUT ROWID;

-- OpenRouter's own running totals for the key (GET /key), sampled over time
CREATE TABLE key_usage (
    ts             INTEGER PRIMARY KEY,   -- when sampled
    usage_nano     INTEGER NOT NULL,      -- all-time usage of the key
    daily_nano     INTEGER,
    weekly_nano    INTEGER,
    monthly_nano   INTEGER
);

CREATE INDEX generations_gave_up ON generations (event_id) WHERE state = 'gave_up';
