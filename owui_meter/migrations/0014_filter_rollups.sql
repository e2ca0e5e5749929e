-- What the Events page's totals row and cost-state filter ask, and periods of whole months, kept
-- as small as the calendar:
--
-- usage_model_source_day: usage_daily summed per model × source × day, for a filter on a model
-- and a source together (the one pair of usage_daily's keys without a rollup of its own). Triggers
-- keep it in step with usage_daily, as 0013's rollups are.
--
-- events_cost_quarter: the events summed per cost source × lookup pending or not × quarter hour
-- (UTC ms / 900000), for a filter on a cost state or cost source. Every time zone's day starts on
-- a quarter hour, so any period of local days is a run of whole quarters. Triggers on events keep
-- it equal to the events themselves (a pruned event leaves it too, as it leaves the events).
--
-- events_cost_source_ts: the newest events of one cost source, for the Events page's list under
-- a cost-state filter (an awaiting or unpriced answer can be rare: without it the list scanned
-- the whole ledger to find fifty).
--
-- `owui-meter check` compares both rollups with what they sum.

CREATE TABLE usage_model_source_day (
    model TEXT NOT NULL,
    source TEXT NOT NULL,
    day TEXT NOT NULL,
    answers INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cost_nano INTEGER NOT NULL DEFAULT 0,
    confirmed_cost_nano INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (model, source, day)
) WITHOUT ROWID;
INSERT INTO usage_model_source_day SELECT model, source, day, sum(answers), sum(prompt_tokens), sum(completion_tokens), sum(reasoning_tokens), sum(cached_tokens), sum(cost_nano), sum(confirmed_cost_nano)
    FROM usage_daily GROUP BY model, source, day;

CREATE TRIGGER usage_daily_model_source_insert AFTER INSERT ON usage_daily BEGIN
    INSERT INTO usage_model_source_day VALUES (NEW.model, NEW.source, NEW.day, NEW.answers, NEW.prompt_tokens, NEW.completion_tokens, NEW.reasoning_tokens, NEW.cached_tokens, NEW.cost_nano, NEW.confirmed_cost_nano)
        ON CONFLICT (model, source, day) DO UPDATE SET answers = answers + excluded.answers, prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, cached_tokens = cached_tokens + excluded.cached_tokens, cost_nano = cost_nano + excluded.cost_nano, confirmed_cost_nano = confirmed_cost_nano + excluded.confirmed_cost_nano;
END;

-- the common update (a cost change, another answer on the same day): add the difference
CREATE TRIGGER usage_daily_model_source_change AFTER UPDATE ON usage_daily WHEN OLD.day = NEW.day AND OLD.model = NEW.model AND OLD.source = NEW.source BEGIN
    UPDATE usage_model_source_day SET answers = answers + NEW.answers - OLD.answers, prompt_tokens = prompt_tokens + NEW.prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens + NEW.completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens + NEW.reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens + NEW.cached_tokens - OLD.cached_tokens, cost_nano = cost_nano + NEW.cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano + NEW.confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE model = NEW.model AND source = NEW.source AND day = NEW.day;
END;

-- an update that moves the row to another day, model or source: take the old out, put the new in
CREATE TRIGGER usage_daily_model_source_move AFTER UPDATE ON usage_daily WHEN NOT (OLD.day = NEW.day AND OLD.model = NEW.model AND OLD.source = NEW.source) BEGIN
    UPDATE usage_model_source_day SET answers = answers - OLD.answers, prompt_tokens = prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens - OLD.cached_tokens, cost_nano = cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE model = OLD.model AND source = OLD.source AND day = OLD.day;
    INSERT INTO usage_model_source_day VALUES (NEW.model, NEW.source, NEW.day, NEW.answers, NEW.prompt_tokens, NEW.completion_tokens, NEW.reasoning_tokens, NEW.cached_tokens, NEW.cost_nano, NEW.confirmed_cost_nano)
        ON CONFLICT (model, source, day) DO UPDATE SET answers = answers + excluded.answers, prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, cached_tokens = cached_tokens + excluded.cached_tokens, cost_nano = cost_nano + excluded.cost_nano, confirmed_cost_nano = confirmed_cost_nano + excluded.confirmed_cost_nano;
    DELETE FROM usage_model_source_day WHERE model = OLD.model AND source = OLD.source AND day = OLD.day AND answers = 0 AND cost_nano = 0 AND confirmed_cost_nano = 0;
END;

CREATE TRIGGER usage_daily_model_source_delete AFTER DELETE ON usage_daily BEGIN
    UPDATE usage_model_source_day SET answers = answers - OLD.answers, prompt_tokens = prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens - OLD.cached_tokens, cost_nano = cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE model = OLD.model AND source = OLD.source AND day = OLD.day;
    DELETE FROM usage_model_source_day WHERE model = OLD.model AND source = OLD.source AND day = OLD.day AND answers = 0 AND cost_nano = 0 AND confirmed_cost_nano = 0;
END;


-- usage_month_user: usage_daily summed per calendar month × user, for periods of whole months (a
-- month's statements, a year of users): a row per person and month, however many answers and
-- days. A period's ragged ends come from usage_day_user (ledger.user_rows_sql).
CREATE TABLE usage_month_user (
    month TEXT NOT NULL,  -- YYYY-MM of the local day
    user_id TEXT NOT NULL,
    answers INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cost_nano INTEGER NOT NULL DEFAULT 0,
    confirmed_cost_nano INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, user_id)
) WITHOUT ROWID;
INSERT INTO usage_month_user SELECT substr(day, 1, 7), user_id, sum(answers), sum(prompt_tokens), sum(completion_tokens), sum(reasoning_tokens), sum(cached_tokens), sum(cost_nano), sum(confirmed_cost_nano)
    FROM usage_daily GROUP BY 1, 2;

CREATE TRIGGER usage_daily_month_user_insert AFTER INSERT ON usage_daily BEGIN
    INSERT INTO usage_month_user VALUES (substr(NEW.day, 1, 7), NEW.user_id, NEW.answers, NEW.prompt_tokens, NEW.completion_tokens, NEW.reasoning_tokens, NEW.cached_tokens, NEW.cost_nano, NEW.confirmed_cost_nano)
        ON CONFLICT (month, user_id) DO UPDATE SET answers = answers + excluded.answers, prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, cached_tokens = cached_tokens + excluded.cached_tokens, cost_nano = cost_nano + excluded.cost_nano, confirmed_cost_nano = confirmed_cost_nano + excluded.confirmed_cost_nano;
END;

CREATE TRIGGER usage_daily_month_user_change AFTER UPDATE ON usage_daily WHEN substr(OLD.day, 1, 7) = substr(NEW.day, 1, 7) AND OLD.user_id = NEW.user_id BEGIN
    UPDATE usage_month_user SET answers = answers + NEW.answers - OLD.answers, prompt_tokens = prompt_tokens + NEW.prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens + NEW.completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens + NEW.reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens + NEW.cached_tokens - OLD.cached_tokens, cost_nano = cost_nano + NEW.cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano + NEW.confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE month = substr(NEW.day, 1, 7) AND user_id = NEW.user_id;
END;

CREATE TRIGGER usage_daily_month_user_move AFTER UPDATE ON usage_daily WHEN NOT (substr(OLD.day, 1, 7) = substr(NEW.day, 1, 7) AND OLD.user_id = NEW.user_id) BEGIN
    UPDATE usage_month_user SET answers = answers - OLD.answers, prompt_tokens = prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens - OLD.cached_tokens, cost_nano = cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE month = substr(OLD.day, 1, 7) AND user_id = OLD.user_id;
    INSERT INTO usage_month_user VALUES (substr(NEW.day, 1, 7), NEW.user_id, NEW.answers, NEW.prompt_tokens, NEW.completion_tokens, NEW.reasoning_tokens, NEW.cached_tokens, NEW.cost_nano, NEW.confirmed_cost_nano)
        ON CONFLICT (month, user_id) DO UPDATE SET answers = answers + excluded.answers, prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, cached_tokens = cached_tokens + excluded.cached_tokens, cost_nano = cost_nano + excluded.cost_nano, confirmed_cost_nano = confirmed_cost_nano + excluded.confirmed_cost_nano;
    DELETE FROM usage_month_user WHERE month = substr(OLD.day, 1, 7) AND user_id = OLD.user_id AND answers = 0 AND cost_nano = 0 AND confirmed_cost_nano = 0;
END;

CREATE TRIGGER usage_daily_month_user_delete AFTER DELETE ON usage_daily BEGIN
    UPDATE usage_month_user SET answers = answers - OLD.answers, prompt_tokens = prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens - OLD.cached_tokens, cost_nano = cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE month = substr(OLD.day, 1, 7) AND user_id = OLD.user_id;
    DELETE FROM usage_month_user WHERE month = substr(OLD.day, 1, 7) AND user_id = OLD.user_id AND answers = 0 AND cost_nano = 0 AND confirmed_cost_nano = 0;
END;


-- usage_month_user_model: usage_daily summed per user × calendar month × model × source, for a
-- person's models and sources over whole months (their page's tables): a heavy user's year is tens
-- of thousands of daily rows, and at most a dozen months × their models × sources here.
CREATE TABLE usage_month_user_model (
    month TEXT NOT NULL,  -- YYYY-MM of the local day
    user_id TEXT NOT NULL,
    model TEXT NOT NULL,
    source TEXT NOT NULL,
    answers INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cost_nano INTEGER NOT NULL DEFAULT 0,
    confirmed_cost_nano INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, month, model, source)
) WITHOUT ROWID;
INSERT INTO usage_month_user_model SELECT substr(day, 1, 7), user_id, model, source, sum(answers), sum(prompt_tokens), sum(completion_tokens), sum(reasoning_tokens), sum(cached_tokens), sum(cost_nano), sum(confirmed_cost_nano)
    FROM usage_daily GROUP BY 1, 2, 3, 4;

CREATE TRIGGER usage_daily_month_user_model_insert AFTER INSERT ON usage_daily BEGIN
    INSERT INTO usage_month_user_model VALUES (substr(NEW.day, 1, 7), NEW.user_id, NEW.model, NEW.source, NEW.answers, NEW.prompt_tokens, NEW.completion_tokens, NEW.reasoning_tokens, NEW.cached_tokens, NEW.cost_nano, NEW.confirmed_cost_nano)
        ON CONFLICT (user_id, month, model, source) DO UPDATE SET answers = answers + excluded.answers, prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, cached_tokens = cached_tokens + excluded.cached_tokens, cost_nano = cost_nano + excluded.cost_nano, confirmed_cost_nano = confirmed_cost_nano + excluded.confirmed_cost_nano;
END;

CREATE TRIGGER usage_daily_month_user_model_change AFTER UPDATE ON usage_daily WHEN substr(OLD.day, 1, 7) = substr(NEW.day, 1, 7) AND OLD.user_id = NEW.user_id AND OLD.model = NEW.model AND OLD.source = NEW.source BEGIN
    UPDATE usage_month_user_model SET answers = answers + NEW.answers - OLD.answers, prompt_tokens = prompt_tokens + NEW.prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens + NEW.completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens + NEW.reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens + NEW.cached_tokens - OLD.cached_tokens, cost_nano = cost_nano + NEW.cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano + NEW.confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE user_id = NEW.user_id AND month = substr(NEW.day, 1, 7) AND model = NEW.model AND source = NEW.source;
END;

CREATE TRIGGER usage_daily_month_user_model_move AFTER UPDATE ON usage_daily WHEN NOT (substr(OLD.day, 1, 7) = substr(NEW.day, 1, 7) AND OLD.user_id = NEW.user_id AND OLD.model = NEW.model AND OLD.source = NEW.source) BEGIN
    UPDATE usage_month_user_model SET answers = answers - OLD.answers, prompt_tokens = prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens - OLD.cached_tokens, cost_nano = cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE user_id = OLD.user_id AND month = substr(OLD.day, 1, 7) AND model = OLD.model AND source = OLD.source;
    INSERT INTO usage_month_user_model VALUES (substr(NEW.day, 1, 7), NEW.user_id, NEW.model, NEW.source, NEW.answers, NEW.prompt_tokens, NEW.completion_tokens, NEW.reasoning_tokens, NEW.cached_tokens, NEW.cost_nano, NEW.confirmed_cost_nano)
        ON CONFLICT (user_id, month, model, source) DO UPDATE SET answers = answers + excluded.answers, prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, cached_tokens = cached_tokens + excluded.cached_tokens, cost_nano = cost_nano + excluded.cost_nano, confirmed_cost_nano = confirmed_cost_nano + excluded.confirmed_cost_nano;
    DELETE FROM usage_month_user_model WHERE user_id = OLD.user_id AND month = substr(OLD.day, 1, 7) AND model = OLD.model AND source = OLD.source AND answers = 0 AND cost_nano = 0 AND confirmed_cost_nano = 0;
END;

CREATE TRIGGER usage_daily_month_user_model_delete AFTER DELETE ON usage_daily BEGIN
    UPDATE usage_month_user_model SET answers = answers - OLD.answers, prompt_tokens = prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens - OLD.completion_tokens, reasoning_tokens = reasoning_tokens - OLD.reasoning_tokens, cached_tokens = cached_tokens - OLD.cached_tokens, cost_nano = cost_nano - OLD.cost_nano, confirmed_cost_nano = confirmed_cost_nano - OLD.confirmed_cost_nano
        WHERE user_id = OLD.user_id AND month = substr(OLD.day, 1, 7) AND model = OLD.model AND source = OLD.source;
    DELETE FROM usage_month_user_model WHERE user_id = OLD.user_id AND month = substr(OLD.day, 1, 7) AND model = OLD.model AND source = OLD.source AND answers = 0 AND cost_nano = 0 AND confirmed_cost_nano = 0;
END;


CREATE TABLE events_cost_quarter (
    cost_source TEXT NOT NULL,
    pending INTEGER NOT NULL,  -- lookup_state = 'pending'
    quarter INTEGER NOT NULL,  -- ts / 900000
    answers INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_nano INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pending, cost_source, quarter)  -- pending first: "awaiting" is pending = 1 OR (pending = 0 AND cost_source = 'pending')
) WITHOUT ROWID;
INSERT INTO events_cost_quarter SELECT cost_source, lookup_state = 'pending', ts / 900000, count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost_nano)
    FROM events GROUP BY 1, 2, 3;

CREATE TRIGGER events_cost_quarter_insert AFTER INSERT ON events BEGIN
    INSERT INTO events_cost_quarter VALUES (NEW.cost_source, NEW.lookup_state = 'pending', NEW.ts / 900000, 1, NEW.prompt_tokens, NEW.completion_tokens, NEW.cost_nano)
        ON CONFLICT (pending, cost_source, quarter) DO UPDATE SET answers = answers + 1, prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, cost_nano = cost_nano + excluded.cost_nano;
END;

CREATE TRIGGER events_cost_quarter_change AFTER UPDATE OF ts, prompt_tokens, completion_tokens, cost_nano, cost_source, lookup_state ON events BEGIN
    UPDATE events_cost_quarter SET answers = answers - 1, prompt_tokens = prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens - OLD.completion_tokens, cost_nano = cost_nano - OLD.cost_nano
        WHERE pending = (OLD.lookup_state = 'pending') AND cost_source = OLD.cost_source AND quarter = OLD.ts / 900000;
    INSERT INTO events_cost_quarter VALUES (NEW.cost_source, NEW.lookup_state = 'pending', NEW.ts / 900000, 1, NEW.prompt_tokens, NEW.completion_tokens, NEW.cost_nano)
        ON CONFLICT (pending, cost_source, quarter) DO UPDATE SET answers = answers + 1, prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, cost_nano = cost_nano + excluded.cost_nano;
    DELETE FROM events_cost_quarter WHERE pending = (OLD.lookup_state = 'pending') AND cost_source = OLD.cost_source AND quarter = OLD.ts / 900000 AND answers = 0;
END;

CREATE TRIGGER events_cost_quarter_delete AFTER DELETE ON events BEGIN
    UPDATE events_cost_quarter SET answers = answers - 1, prompt_tokens = prompt_tokens - OLD.prompt_tokens, completion_tokens = completion_tokens - OLD.completion_tokens, cost_nano = cost_nano - OLD.cost_nano
        WHERE pending = (OLD.lookup_state = 'pending') AND cost_source = OLD.cost_source AND quarter = OLD.ts / 900000;
    DELETE FROM events_cost_quarter WHERE pending = (OLD.lookup_state = 'pending') AND cost_source = OLD.cost_source AND quarter = OLD.ts / 900000 AND answers = 0;
END;

CREATE INDEX events_cost_source_ts ON events (cost_source, ts, id);

ANALYZE usage_model_source_day;
ANALYZE usage_month_user;
ANALYZE usage_month_user_model;
ANALYZE events_cost_quarter;
ANALYZE events_cost_source_ts;
