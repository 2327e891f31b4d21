-- One execution by its id, and the attempts of one delivery, without a scan
-- of the app's stream (GET …/executions/{id}); a delivery's dead letter.
CREATE INDEX events_invocations_by_execution_idx
    ON events (stream, (data ->> 'execution_id'))
    WHERE type IN ('invocation.recorded.v1', 'invocation.accepted.v1');
CREATE INDEX events_invocations_by_delivery_idx
    ON events (stream, (data ->> 'delivery_id'))
    WHERE type = 'invocation.recorded.v1' AND (data ->> 'delivery_id') IS NOT NULL;
CREATE INDEX dead_letters_delivery_idx ON dead_letters (app_id, delivery_id);
