-- Budgets: limits in nano-USD per user, group or everyone, per calendar period (METER_TIMEZONE).
CREATE TABLE budgets (
    id            INTEGER PRIMARY KEY,
    scope         TEXT NOT NULL CHECK (scope IN ('user', 'group', 'all')),
    scope_id      TEXT,                        -- user or group id; NULL for 'all'
    period        TEXT NOT NULL CHECK (period IN ('day', 'week', 'month', 'none')),
    limit_nano    INTEGER NOT NULL CHECK (limit_nano >= 0),
    warn_percent  INTEGER NOT NULL DEFAULT 80 CHECK (warn_percent BETWEEN 1 AND 100),
    action        TEXT NOT NULL DEFAULT 'block' CHECK (action IN ('block', 'warn')),
    group_mode    TEXT NOT NULL DEFAULT 'per_member' CHECK (group_mode IN ('per_member', 'shared')),
    created       INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    CHECK ((scope = 'all') = (scope_id IS NULL))
);

CREATE INDEX budgets_scope ON budgets (scope, scope_id);

-- Running spend per user and calendar period, kept by the ledger's cost listener, so the inlet
-- check reads a handful of rows instead of scanning the ledger.
CREATE TABLE spend (
    user_id    TEXT NOT NULL,
    period     TEXT NOT NULL,               -- day, week, month, none
    start      TEXT NOT NULL,               -- the period's first day (YYYY-MM-DD); 'all' for none
    cost_nano  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, period, start)
) WITHOUT ROWID;

CREATE INDEX spend_period ON spend (period, start);

-- Prepaid credit: top-ups and adjustments are rows, never an overwritten balance.
CREATE TABLE balance_entries (
    id           INTEGER PRIMARY KEY,
    user_id      TEXT NOT NULL,
    ts           INTEGER NOT NULL,
    amount_nano  INTEGER NOT NULL,          -- positive: credit; negative: adjustment
    actor        TEXT NOT NULL,
    note         TEXT NOT NULL DEFAULT ''
);

CREATE INDEX balance_entries_user ON balance_entries (user_id, ts);

-- What each user with a balance has spent since their balance began (usage deducts).
CREATE TABLE balances (
    user_id     TEXT PRIMARY KEY,
    since       INTEGER NOT NULL,
    spent_nano  INTEGER NOT NULL DEFAULT 0
);

-- Alerts already sent: at most one per budget, kind and period.
CREATE TABLE alerts_sent (
    budget_id  INTEGER NOT NULL,
    user_id    TEXT NOT NULL,               -- '' for shared budgets
    start      TEXT NOT NULL,
    kind       TEXT NOT NULL,               -- warn, block
    ts         INTEGER NOT NULL,
    PRIMARY KEY (budget_id, user_id, start, kind)
) WITHOUT ROWID;
