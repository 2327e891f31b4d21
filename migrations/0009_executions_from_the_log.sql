-- The execution log is read from the events themselves (invocation.recorded.v1):
-- a second row per request, with its own indexes, cost more than everything
-- else an invocation writes. Failed runs get a small partial index for the
-- ?status=error filter; everything else walks the stream's own index.
DROP TABLE executions;

CREATE INDEX events_failed_invocations_idx ON events (stream, stream_version)
    WHERE type = 'invocation.recorded.v1' AND (data ->> 'status') = 'error';
