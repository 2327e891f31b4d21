-- The answers http.fetch got in an attempt of a delivery (an async run or a
-- trigger's run), recorded before the script saw them: if the attempt's
-- commit fails and it runs again, it is handed these instead of fetching
-- twice. A cache of what the world answered, not a projection (like
-- snapshots); an attempt's rows go when its invocation is recorded.
CREATE TABLE fetch_journal (
    app_id      text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    run_key     text NOT NULL,
    seq         integer NOT NULL,
    digest      text NOT NULL,
    entry       bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, run_key, seq)
);
