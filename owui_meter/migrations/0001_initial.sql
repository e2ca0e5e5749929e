-- The core ledger: who chatted, every answer once, and the generation ids to confirm.
-- Times are unix milliseconds (UTC). Money is integer nano-USD (1e-9 USD).

CREATE TABLE users (
    id          TEXT PRIMARY KEY,          -- Open WebUI user id
    email       TEXT,
    name        TEXT,
    role        TEXT,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
);

CREATE TABLE events (
    id                 INTEGER PRIMARY KEY,
    key                TEXT NOT NULL UNIQUE,   -- idempotency key: one answer, one row
    ts                 INTEGER NOT NULL,       -- when the answer was given
    received           INTEGER NOT NULL,       -- when the meter got it
    user_id            TEXT NOT NULL REFERENCES users(id),
    model              TEXT NOT NULL,          -- Open WebUI model id (may be a workspace model)
    base_model         TEXT,                   -- the workspace model's base model, if any
    chat_id            TEXT,
    message_id         TEXT,
    session_id         TEXT,
    source             TEXT NOT NULL CHECK (source IN ('ui', 'api')),
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens   INTEGER NOT NULL DEFAULT 0,
    cached_tokens      INTEGER NOT NULL DEFAULT 0,
    cost_nano          INTEGER NOT NULL DEFAULT 0,  -- the best figure known now
    cost_source        TEXT NOT NULL
        CHECK (cost_source IN ('generation', 'inline', 'estimate', 'pending', 'unpriced')),
    inline_cost_nano   INTEGER,                -- what the chat reported; kept after confirmation
    lookup_state       TEXT NOT NULL DEFAULT 'none'
        CHECK (lookup_state IN ('none', 'pending', 'confirmed', 'gave_up'))
);

-- newest-first listings, per user and per model, and time-range aggregates
CREATE INDEX events_ts ON events (ts, id);
CREATE INDEX events_user_ts ON events (user_id, ts);
CREATE INDEX events_model_ts ON events (model, ts);
CREATE INDEX events_lookup_pending ON events (lookup_state) WHERE lookup_state = 'pending';

-- OpenRouter generation ids of an answer: the resolver's queue and its results
CREATE TABLE generations (
    id                        TEXT PRIMARY KEY,  -- gen-…
    event_id                  INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    state                     TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'done', 'gave_up')),
    attempts                  INTEGER NOT NULL DEFAULT 0,
    created                   INTEGER NOT NULL,
    next_try                  INTEGER NOT NULL,
    last_error                TEXT,
    total_cost_nano           INTEGER,
    model                     TEXT,
    provider_name             TEXT,
    tokens_prompt             INTEGER,
    tokens_completion         INTEGER,
    native_tokens_prompt      INTEGER,
    native_tokens_completion  INTEGER,
    native_tokens_reasoning   INTEGER,
    native_tokens_cached      INTEGER,
    latency_ms                INTEGER
);

CREATE INDEX generations_event ON generations (event_id);
CREATE INDEX generations_due ON generations (next_try) WHERE state = 'pending';

-- dashboard accounts; the first is 'admin' (PASSWORD_HASH or the first-run password)
CREATE TABLE admins (
    id             INTEGER PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    created        INTEGER NOT NULL
);

-- Open WebUI groups and memberships, synced from its admin API
CREATE TABLE groups (
    id           TEXT PRIMARY KEY,          -- Open WebUI group id
    name         TEXT NOT NULL,
    description  TEXT,
    synced       INTEGER NOT NULL           -- when the last sync saw it
);

CREATE TABLE group_members (
    group_id  TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;

CREATE INDEX group_members_user ON group_members (user_id);

-- who changed what, when (budgets, top-ups, erasures, admin accounts); never personal data
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    ts      INTEGER NOT NULL,
    actor   TEXT NOT NULL,                 -- admin username, token name, or 'system'
    action  TEXT NOT NULL,                 -- e.g. budget.create, user.erase
    detail  TEXT NOT NULL DEFAULT '{}'     -- JSON
);

CREATE INDEX audit_log_ts ON audit_log (ts);

-- small named values the meter keeps across restarts (worker state, sync status)
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- per-day totals (day in METER_TIMEZONE), kept by the ledger on every record and cost change.
-- Charts and statements read these; they outlive the events that retention prunes.
CREATE TABLE usage_daily (
    day                  TEXT NOT NULL,     -- YYYY-MM-DD
    user_id              TEXT NOT NULL,
    model                TEXT NOT NULL,
    source               TEXT NOT NULL,
    answers              INTEGER NOT NULL DEFAULT 0,
    prompt_tokens        INTEGER NOT NULL DEFAULT 0,
    completion_tokens    INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens     INTEGER NOT NULL DEFAULT 0,
    cached_tokens        INTEGER NOT NULL DEFAULT 0,
    cost_nano            INTEGER NOT NULL DEFAULT 0,
    confirmed_cost_nano  INTEGER NOT NULL DEFAULT 0,  -- the part confirmed by OpenRouter
    PRIMARY KEY (day, user_id, model, source)
) WITHOUT ROWID;

CREATE INDEX usage_daily_user ON usage_daily (user_id, day);
CREATE INDEX usage_daily_model ON usage_daily (model, day);
