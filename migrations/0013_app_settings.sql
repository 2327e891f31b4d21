-- An app's settings (app.cors_set.v1, app.fetch_hosts_set.v1): the front
-- door's routing table loads the CORS policies from here, the dashboard both.
CREATE TABLE app_settings (
    app_id      text PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    cors        jsonb,
    fetch_hosts text[]
);
