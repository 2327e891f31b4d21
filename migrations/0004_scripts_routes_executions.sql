-- Projections of the app streams: scripts, routes and the execution log.
-- Rows of a deleted app go with it (ON DELETE CASCADE); the log keeps history.
CREATE TABLE scripts (
    id         text PRIMARY KEY,
    app_id     text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (name ~ '^[a-zA-Z_][a-zA-Z0-9_]{0,63}$'),
    kind       text NOT NULL CHECK (kind IN ('endpoint', 'module')),
    source     text NOT NULL,
    version    integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (app_id, name)
);
CREATE INDEX scripts_app_kind_idx ON scripts (app_id, kind);

CREATE TABLE routes (
    id            text PRIMARY KEY,
    app_id        text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    script_id     text NOT NULL REFERENCES scripts (id) ON DELETE CASCADE,
    method        text NOT NULL,
    path          text NOT NULL,
    -- the path with parameter names erased: /users/{id} and /users/{name} clash
    path_shape    text NOT NULL,
    dispatch_mode text NOT NULL CHECK (dispatch_mode IN ('sync', 'async')),
    created_at    timestamptz NOT NULL,
    UNIQUE (app_id, method, path_shape)
);
CREATE INDEX routes_script_idx ON routes (script_id);

CREATE TABLE executions (
    id          text PRIMARY KEY,
    app_id      text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    script_id   text NOT NULL,
    trigger     text NOT NULL,
    status      text NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms double precision NOT NULL,
    error       text,
    logs        jsonb NOT NULL,
    position    bigint NOT NULL
);
CREATE INDEX executions_app_idx ON executions (app_id, position DESC);
CREATE INDEX executions_app_status_idx ON executions (app_id, status, position DESC);

-- Control-state snapshots: a cache for fast actor activation, not a projection.
CREATE TABLE snapshots (
    stream   text PRIMARY KEY,
    version  bigint NOT NULL,
    state    bytea NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);

-- Sync requests whose caller gave up (504): kept for the retention sweep.
CREATE TABLE abandoned_executions (
    execution_id text PRIMARY KEY,
    app_id       text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    reason       text NOT NULL,
    abandoned_at timestamptz NOT NULL
);
CREATE INDEX abandoned_executions_time_idx ON abandoned_executions (abandoned_at);

-- Apps that brought their host down too often: they run on a host of their own.
CREATE TABLE quarantined_apps (
    app_id text PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    since  timestamptz NOT NULL
);
