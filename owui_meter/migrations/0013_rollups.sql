-- Rollups of usage_daily shaped to what the pages ask: per day and user, per day and model, per
-- day and source. usage_daily keeps a row per day × user × model × source, which on a busy ledger
-- is nearly a row per answer; these stay as small as the team (days × users, days × models), so
-- page times stay flat as the ledger grows. Triggers keep them exactly in step with usage_daily
-- on every path that changes it (record, cost change, time-zone rebuild, erasure, import);
-- nothing else writes them. `owui-meter check` compares them with usage_daily.

CREATE TABLE usage_day_user (
    day TEXT NOT NULL,
    user_id TEXT NOT NULL,
    answers INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cost_nano INTEGER NOT NULL DEFAULT 0,
    confirmed_cost_nano INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, user_id)
) WITHOUT ROWID;
INSERT INTO usage_day_user SELECT day, user_id, sum(answers), sum(prompt_tokens), sum(completion_tokens), sum(reasoning_tokens), sum(cached_tokens), sum(cost_nano), sum(confirmed_cost_nano) FROM usage_daily GROUP BY day, user_id;

CREATE TABLE usage_day_model (
    day TEXT NOT NULL,
    model TEXT NOT NULL,
    answers INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cost_nano INTEGER NOT NULL DEFAULT 0,
    confirmed_cost_nano INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, model)
) WITHOUT ROWID;
INSERT INTO usage_day_model SELECT day, model, sum(answers), sum(prompt_tokens), sum(completion_tokens), sum(reasoning_tokens), sum(cached_tokens), sum(cost_nano), sum(confirmed_cost_nano) FROM usage_daily GROUP BY day, model;

CREATE TABLE usage_day_source (
    day TEXT NOT NULL,
    source TEXT NOT NULL,
    answers INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cost_nano INTEGER NOT NULL DEFAULT 0,
    confirmed_cost_nano INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, source)
) WITHOUT ROWID;
INSERT INTO usage_day_source SELECT day, source, sum(answers), sum(prompt_tokens), sum(completion_tokens), sum(reasoning_tokens), sum(cached_tokens), sum(cost_nano), sum(confirmed_cost_nano) FROM usage_daily GROUP BY day, source;

-- covering what the users list and the top users group by: no table lookups, no sort by user
CREATE INDEX usage_day_user_user ON usage_day_user (user_id, day, cost_nano, answers);

CREATE TRIGGER usage_daily_rollup_insert AFTER INSERT ON usage_daily BEGIN
    INSERT INTO usage_day_user VALUES (NEW.day, NEW.user_id, NEW.answers, NEW.prompt_tokens, NEW.completion_tokens, NEW.reasoning_tokens, NEW.cached_tokens, NEW.cost_nano, NEW.confirmed_cost_nano)
        ON CONFLICT (day, user_id) DO UPDATE SET answers = answers + excluded.answers, prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, cached_tokens = cached_tokens + excluded.cached_tokens, cost_nano = cost_nano + excluded.cost_nano, confirmed_cost_nano = confirmed_cost_nano + excluded.confirmed_cost_nano;
    INSERT INTO usage_day_model VALUES (NEW.day, NEW.model, NEW.answers, NEW.prompt_tokens, NEW.completion_tokens, NEW.reasoning_tokens, NEW.cached_tokens, NEW.cost_nano, NEW.confirmed_cost_nano)
        ON CONFLICT (day, model) DO UPDATE SET answers = answers + excluded.answers, prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, cached_tokens = cached_tokens + excluded.cached_tokens, cost_nano = cost_nano + excluded.cost_nano, confirmed_cost_nano = confirmed_cost_nano + excluded.confirmed_cost_nano;
    INSERT INTO usage_day_source VALUES (NEW.day, NEW.source, NEW.answers, NEW.prompt_tokens, NEW.completion_tokens, NEW.reasoning_tokens, NEW.cached_tokens, NEW.cost_nano, NEW.confirmed_cost_nano)
        ON CONFLICT (day, source) DO UPDATE SET answers = answers + excluded.answers, prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, cached_tokens = cached_tokens + excluded.cached_tokens, cost_nano = cost_nano + excluded.cost_nano, confirmed_cost_nano = confirmed_cost_nano + excluded.confirmed_cost_nano;
END;

-- the common update (a cost change, another answer on the same day): add the difference
CREATE TRIGGER usage_daily_rollup_change AFTER UPDATE ON usage_daily WHEN OLD.day = NEW.day AND OLD.user_id = NEW.user_id AND OLD.model = NEW.model AND OLD.source = NEW.source BEGIN
    UPDATE usage_day_user SET answers = answers + NEW.answers - OLD.answers, prompt_tokens = prompt_tokens + NEW.prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens + NEW.completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens + NEW.reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens + NEW.cached_tokens - OLD.cached_tokens, cost_nano = cost_nano + NEW.cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano + NEW.confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE day = NEW.day AND user_id = NEW.user_id;
    UPDATE usage_day_model SET answers = answers + NEW.answers - OLD.answers, prompt_tokens = prompt_tokens + NEW.prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens + NEW.completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens + NEW.reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens + NEW.cached_tokens - OLD.cached_tokens, cost_nano = cost_nano + NEW.cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano + NEW.confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE day = NEW.day AND model = NEW.model;
    UPDATE usage_day_source SET answers = answers + NEW.answers - OLD.answers, prompt_tokens = prompt_tokens + NEW.prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens + NEW.completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens + NEW.reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens + NEW.cached_tokens - OLD.cached_tokens, cost_nano = cost_nano + NEW.cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano + NEW.confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE day = NEW.day AND source = NEW.source;
END;

-- an update that moves the row (erasure renames the user): take the old out, put the new in
CREATE TRIGGER usage_daily_rollup_move AFTER UPDATE ON usage_daily WHEN NOT (OLD.day = NEW.day AND OLD.user_id = NEW.user_id AND OLD.model = NEW.model AND OLD.source = NEW.source) BEGIN
    UPDATE usage_day_user SET answers = answers - OLD.answers, prompt_tokens = prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens - OLD.cached_tokens, cost_nano = cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE day = OLD.day AND user_id = OLD.user_id;
    UPDATE usage_day_model SET answers = answers - OLD.answers, prompt_tokens = prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens - OLD.cached_tokens, cost_nano = cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE day = OLD.day AND model = OLD.model;
    UPDATE usage_day_source SET answers = answers - OLD.answers, prompt_tokens = prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens - OLD.cached_tokens, cost_nano = cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE day = OLD.day AND source = OLD.source;
    INSERT INTO usage_day_user VALUES (NEW.day, NEW.user_id, NEW.answers, NEW.prompt_tokens, NEW.completion_tokens, NEW.reasoning_tokens, NEW.cached_tokens, NEW.cost_nano, NEW.confirmed_cost_nano)
        ON CONFLICT (day, user_id) DO UPDATE SET answers = answers + excluded.answers, prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, cached_tokens = cached_tokens + excluded.cached_tokens, cost_nano = cost_nano + excluded.cost_nano, confirmed_cost_nano = confirmed_cost_nano + excluded.confirmed_cost_nano;
    INSERT INTO usage_day_model VALUES (NEW.day, NEW.model, NEW.answers, NEW.prompt_tokens, NEW.completion_tokens, NEW.reasoning_tokens, NEW.cached_tokens, NEW.cost_nano, NEW.confirmed_cost_nano)
        ON CONFLICT (day, model) DO UPDATE SET answers = answers + excluded.answers, prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, cached_tokens = cached_tokens + excluded.cached_tokens, cost_nano = cost_nano + excluded.cost_nano, confirmed_cost_nano = confirmed_cost_nano + excluded.confirmed_cost_nano;
    INSERT INTO usage_day_source VALUES (NEW.day, NEW.source, NEW.answers, NEW.prompt_tokens, NEW.completion_tokens, NEW.reasoning_tokens, NEW.cached_tokens, NEW.cost_nano, NEW.confirmed_cost_nano)
        ON CONFLICT (day, source) DO UPDATE SET answers = answers + excluded.answers, prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, cached_tokens = cached_tokens + excluded.cached_tokens, cost_nano = cost_nano + excluded.cost_nano, confirmed_cost_nano = confirmed_cost_nano + excluded.confirmed_cost_nano;
    DELETE FROM usage_day_user WHERE day = OLD.day AND user_id = OLD.user_id AND answers = 0 AND cost_nano = 0 AND confirmed_cost_nano = 0;
    DELETE FROM usage_day_model WHERE day = OLD.day AND model = OLD.model AND answers = 0 AND cost_nano = 0 AND confirmed_cost_nano = 0;
    DELETE FROM usage_day_source WHERE day = OLD.day AND source = OLD.source AND answers = 0 AND cost_nano = 0 AND confirmed_cost_nano = 0;
END;

CREATE TRIGGER usage_daily_rollup_delete AFTER DELETE ON usage_daily BEGIN
    UPDATE usage_day_user SET answers = answers - OLD.answers, prompt_tokens = prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens - OLD.cached_tokens, cost_nano = cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE day = OLD.day AND user_id = OLD.user_id;
    UPDATE usage_day_model SET answers = answers - OLD.answers, prompt_tokens = prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens - OLD.cached_tokens, cost_nano = cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE day = OLD.day AND model = OLD.model;
    UPDATE usage_day_source SET answers = answers - OLD.answers, prompt_tokens = prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens - OLD.cached_tokens, cost_nano = cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE day = OLD.day AND source = OLD.source;
    DELETE FROM usage_day_user WHERE day = OLD.day AND user_id = OLD.user_id AND answers = 0 AND cost_nano = 0 AND confirmed_cost_nano = 0;
    DELETE FROM usage_day_model WHERE day = OLD.day AND model = OLD.model AND answers = 0 AND cost_nano = 0 AND confirmed_cost_nano = 0;
    DELETE FROM usage_day_source WHERE day = OLD.day AND source = OLD.source AND answers = 0 AND cost_nano = 0 AND confirmed_cost_nano = 0;
END;
