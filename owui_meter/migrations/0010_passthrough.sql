-- Pass-through capture: every generation seen on /openrouter/v1, and a new event source 'task'.

-- events.source may now be 'task' (Open WebUI's title, tag and follow-up calls, seen only by the
-- pass-through). Widening a CHECK changes nothing stored, so the table's SQL text is edited in
-- place, as SQLite documents for removing or loosening constraints; rebuilding the table would
-- have to copy every event and every table that references it. RESET reloads this connection's
-- schema; the CREATE TABLE below bumps the schema cookie for every other connection.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, 'CHECK (source IN (''ui'', ''api''))', 'CHECK (source IN (''ui'', ''api'', ''task''))')
WHERE type = 'table' AND name = 'events';
PRAGMA writable_schema = RESET;

-- the edit above must have happened: fail the migration otherwise
CREATE TEMP TABLE migration_0010_check (ok INTEGER NOT NULL CHECK (ok));
INSERT INTO migration_0010_check
SELECT instr(sql, '''ui'', ''api'', ''task''') > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'events';
DROP TABLE migration_0010_check;

-- One row per generation the pass-through saw. Never prompts or answers: ids, model, tokens, cost.
-- A row waits (until `due`) for an answer from the plugin to claim it through the generations
-- table; then it is 'claimed' (billed with that answer), or becomes its own event ('event'), or,
-- when no user was known, 'unattributed' (left to reconciliation).
CREATE TABLE passthrough_generations (
    id                 TEXT PRIMARY KEY,        -- gen-…, the response's id
    ts                 INTEGER NOT NULL,        -- when the response ended (unix ms)
    user_id            TEXT,                    -- Open WebUI user id from the forwarded headers or JWT
    chat_id            TEXT,                    -- X-OpenWebUI-Chat-Id
    model              TEXT NOT NULL,
    streamed           INTEGER NOT NULL,
    task               INTEGER NOT NULL DEFAULT 0,  -- the request was one of Open WebUI's task prompts
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens   INTEGER NOT NULL DEFAULT 0,
    cached_tokens      INTEGER NOT NULL DEFAULT 0,
    inline_cost_nano   INTEGER,                 -- usage.cost of the response, when it had one
    byok               INTEGER NOT NULL DEFAULT 0,  -- paid with the team's own provider key (usage.is_byok)
    inline_provider_nano INTEGER,               -- BYOK: the provider's charge the response reported
    state              TEXT NOT NULL DEFAULT 'waiting'
        CHECK (state IN ('waiting', 'claimed', 'event', 'unattributed')),
    event_id           INTEGER REFERENCES events(id) ON DELETE SET NULL,  -- the event that bills it
    due                INTEGER NOT NULL         -- when an unclaimed row becomes its own event
);

CREATE INDEX passthrough_due ON passthrough_generations (due) WHERE state = 'waiting';
CREATE INDEX passthrough_user_ts ON passthrough_generations (user_id, ts);
CREATE INDEX passthrough_event ON passthrough_generations (event_id);
