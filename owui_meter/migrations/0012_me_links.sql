-- Short links to a chat user's own page, /me/<id>: a random id stored with its user and expiry,
-- so the line under each answer stays short, and an admin can revoke a user's links.
CREATE TABLE me_links (
    id       TEXT PRIMARY KEY,           -- random, URL-safe (16 characters)
    user_id  TEXT NOT NULL,
    created  INTEGER NOT NULL,           -- unix ms
    expires  INTEGER NOT NULL,           -- unix ms
    revoked  INTEGER                     -- unix ms, when an admin revoked it
) WITHOUT ROWID;

CREATE INDEX me_links_user ON me_links (user_id, created);
