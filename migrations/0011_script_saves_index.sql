-- A script's versions are its script.saved events: find them without reading
-- the whole app stream (invocations included).
CREATE INDEX events_script_saves_idx ON events (stream, (data ->> 'script_id'), stream_version)
    WHERE type = 'script.saved.v1';
