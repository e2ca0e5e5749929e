-- OpenRouter Broadcast (POST /v1/traces): one row per generation OpenRouter traced.
-- Never prompts or answers: ids, model, app, tokens and cost only. The user and session ids are
-- kept only while the row waits; they are cleared once it is settled (they live on the event).
--
-- A row waits (until `due`) for an answer of the plugin (or the pass-through) that names its
-- generation; it is then 'joined' (its cost confirms that answer's), or becomes an event of its
-- own ('event', key 'broadcast:<id>'), under its user when the meter knows them, else as spend
-- not attributed to a user.
CREATE TABLE broadcast_generations (
    id                 TEXT PRIMARY KEY,        -- gen-… (the span's gen_ai.response.id), or span:<trace>:<span>
    gen_id             TEXT,                    -- the OpenRouter generation id, when the span had one
    ts                 INTEGER NOT NULL,        -- when the generation ended (unix ms)
    received           INTEGER NOT NULL,
    user_id            TEXT,                    -- openrouter.user.id as sent, while waiting
    session_id         TEXT,                    -- session.id as sent, while waiting
    model              TEXT NOT NULL,
    app                TEXT,                    -- the OpenRouter API key's name: which app spent it
    provider           TEXT,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens   INTEGER NOT NULL DEFAULT 0,
    cached_tokens      INTEGER NOT NULL DEFAULT 0,
    cost_nano          INTEGER,                 -- gen_ai.usage.total_cost; NULL when the span had none
    state              TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'joined', 'event')),
    event_id           INTEGER REFERENCES events(id) ON DELETE SET NULL,  -- the answer that bills it
    due                INTEGER NOT NULL         -- when a row nobody claimed becomes its own event
);

CREATE INDEX broadcast_waiting ON broadcast_generations (due) WHERE state = 'waiting';
CREATE INDEX broadcast_ts ON broadcast_generations (ts);
CREATE INDEX broadcast_event ON broadcast_generations (event_id);
