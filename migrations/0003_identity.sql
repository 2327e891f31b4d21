-- Identity and access (SPEC.md §6).
-- users, memberships and api_keys are projections of the system stream, written
-- in the events' transaction. api_key_usage, sessions and login_throttle are
-- plain operational tables: not identity changes, never events, not rebuilt by
-- replay.

CREATE TABLE users (
    id            text PRIMARY KEY,
    username      text NOT NULL UNIQUE,      -- stored lower-case
    password_hash text NOT NULL,             -- argon2id encoded; never the password
    is_admin      boolean NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
-- "Does any admin exist?" at start-up and the last-admin rule.
CREATE INDEX users_admin_idx ON users (id) WHERE is_admin;

CREATE TABLE memberships (
    app_id     text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('viewer', 'editor', 'owner')),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE api_keys (
    id          text PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        text NOT NULL,
    prefix      text NOT NULL,               -- first characters of the secret, shown in lists
    secret_hash text NOT NULL UNIQUE,        -- hex SHA-256 of the secret: the lookup key
    scopes      text[] NOT NULL,
    app_id      text,                        -- no FK: a key outlives its app's deletion, inert
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- Last use of a key: written at most about once a minute per key.
CREATE TABLE api_key_usage (
    key_id       text PRIMARY KEY,
    last_used_at timestamptz NOT NULL
);

-- Dashboard sessions; the cookie holds the token, this table its SHA-256.
CREATE TABLE sessions (
    token_hash text PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expiry_idx ON sessions (expires_at);

-- Login attempts per subject ('user:<name>' or 'addr:<ip>'), shared by every
-- front-door process so brute force cannot be spread across them.
CREATE TABLE login_throttle (
    subject         text PRIMARY KEY,
    attempts        integer NOT NULL,
    last_attempt_at timestamptz NOT NULL,
    blocked_until   timestamptz
);
