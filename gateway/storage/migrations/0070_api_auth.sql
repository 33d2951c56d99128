-- Cockpit users, login sessions, integrator API tokens and login attempts (dashboard_api).
CREATE TABLE IF NOT EXISTS api_users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'counsellor', 'admin')),
    password_hash TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0
);

-- Only a SHA-256 of each secret is stored; the secret itself is shown once.
CREATE TABLE IF NOT EXISTS api_sessions (
    token_hash TEXT PRIMARY KEY,
    user       TEXT NOT NULL REFERENCES api_users (name),
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS api_sessions_expiry ON api_sessions (expires_ms);

CREATE TABLE IF NOT EXISTS api_tokens (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    label      TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'counsellor', 'admin')),
    created_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS api_login_attempts (
    ts_ms  INTEGER NOT NULL,
    user   TEXT NOT NULL,
    client TEXT NOT NULL,
    ok     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS api_login_attempts_user ON api_login_attempts (user, ts_ms);
CREATE INDEX IF NOT EXISTS api_login_attempts_client ON api_login_attempts (client, ts_ms);
