-- API tokens of issuers and admins (docs/security.md). Only the sha256 of a
-- token is kept: the token itself is shown once, when it is created, and a
-- copy of this table does not let anyone call the broker. `issuer` is the
-- issuer an issuer token acts for ('' for an admin token); a revoked token
-- keeps its row, so `token list` shows when it stopped working.
CREATE TABLE api_tokens (
    token_sha256 TEXT PRIMARY KEY,
    role         TEXT NOT NULL CHECK (role IN ('issuer', 'admin')),
    issuer       TEXT NOT NULL DEFAULT '',
    label        TEXT NOT NULL DEFAULT '',
    created_ms   INTEGER NOT NULL,
    revoked_ms   INTEGER
);
