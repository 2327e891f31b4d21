-- The event log: the source of truth (DESIGN.md "The event log is the source of truth").
-- Events are never updated or deleted by the application.
CREATE TABLE events (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Global readers follow (txid, position) below the oldest running transaction,
    -- so an event that commits late with a lower position is never skipped.
    txid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream         text NOT NULL,
    stream_version bigint NOT NULL CHECK (stream_version > 0),
    type           text NOT NULL,
    data           jsonb NOT NULL,
    meta           jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_key UNIQUE (stream, stream_version)
);

CREATE INDEX events_txid_position_idx ON events (txid, position);
CREATE INDEX events_type_position_idx ON events (type, position);
CREATE INDEX events_recorded_at_idx ON events (recorded_at);
