-- Projections of triggers and dead letters, and the wake-up schedule of apps
-- with pending deliveries (so a restarted server finds work that is due).
CREATE TABLE triggers (
    id           text PRIMARY KEY,
    app_id       text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('kv', 'docs', 'dead_letter')),
    script_id    text NOT NULL REFERENCES scripts (id) ON DELETE CASCADE,
    ops          text[] NOT NULL,
    collection   text,
    capabilities text[],
    created_at   timestamptz NOT NULL
);
CREATE INDEX triggers_app_idx ON triggers (app_id);

CREATE TABLE dead_letters (
    id               text PRIMARY KEY,
    app_id           text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    delivery_id      text NOT NULL,
    source           text NOT NULL,
    script_id        text NOT NULL,
    trigger_id       text,
    route_id         text,
    event            jsonb NOT NULL,
    request          jsonb,
    error            text NOT NULL,
    attempts         integer NOT NULL,
    depth            integer NOT NULL,
    first_attempt_at timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    -- NULL while open; 'replayed', 'resolved' or 'handler_failed' after
    resolution       text,
    resolved_by      text,
    resolved_at      timestamptz,
    position         bigint NOT NULL
);
CREATE INDEX dead_letters_app_idx ON dead_letters (app_id, position DESC);
CREATE INDEX dead_letters_open_idx ON dead_letters (app_id)
    WHERE resolution IS DISTINCT FROM 'resolved';
CREATE INDEX dead_letters_age_idx ON dead_letters (created_at);

CREATE TABLE app_wakeups (
    app_id text PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    due_at timestamptz NOT NULL
);
CREATE INDEX app_wakeups_due_idx ON app_wakeups (due_at);
