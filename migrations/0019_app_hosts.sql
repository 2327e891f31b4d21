-- The app hosts alive now: each shared AppHost writes its row every
-- PICLOUD_HOST_HEARTBEAT_INTERVAL_MS; when no host of a node has written for
-- PICLOUD_HOST_HEARTBEAT_TIMEOUT_MS, the node stopped or died and its hosts
-- are gone. Front doors place apps by rendezvous over the live rows, and
-- connect to the address written here. Operational state, not history: rows
-- are updated in place and deleted by a host that leaves, never events.
-- Times are the database's clock (now()), so the nodes' clocks never matter.
CREATE TABLE app_hosts (
    name       text PRIMARY KEY,
    node_id    text NOT NULL,
    host       text NOT NULL,
    port       integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    beat_at    timestamptz NOT NULL DEFAULT now()
);
