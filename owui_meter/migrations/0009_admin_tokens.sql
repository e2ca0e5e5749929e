-- Admin API tokens made by `owui-meter token create`, so they can be listed and revoked one by one
-- (rotating JWT_SECRET still kills them all at once). The token itself is never stored.
CREATE TABLE admin_tokens (
    jti      TEXT PRIMARY KEY,              -- the token's unique id (its "jti" claim)
    name     TEXT NOT NULL,                 -- who it is for (its "sub" claim)
    created  INTEGER NOT NULL,              -- unix ms
    expires  INTEGER NOT NULL,              -- unix ms
    revoked  INTEGER                        -- unix ms, NULL while valid
) WITHOUT ROWID;
