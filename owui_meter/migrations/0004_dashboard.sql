-- Dashboard sessions, kept server-side so logging out (or an expiry) ends them for good.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,          -- random, also in the signed session cookie
    admin_id    INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    created     INTEGER NOT NULL,
    expires     INTEGER NOT NULL
);

CREATE INDEX sessions_expires ON sessions (expires);
