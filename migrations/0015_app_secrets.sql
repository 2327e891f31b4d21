-- Apps' secrets (secret.set.v1, secret.deleted.v1 of the system stream): the
-- sealed value only (AES-256-GCM, base64, nonce first) and the id of the key
-- that sealed it. Scripts of the app open them; the API lists names only.
CREATE TABLE app_secrets (
    app_id     text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,63}$'),
    ciphertext text NOT NULL,
    key_id     text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, name)
);
