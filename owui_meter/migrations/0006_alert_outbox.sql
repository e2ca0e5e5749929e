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
