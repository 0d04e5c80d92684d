-- What several Herald nodes share through the store (node heartbeats, circuit breakers), and
-- the index message retention deletes by. Timestamps are INTEGER microseconds (UTC).

-- Nodes that announced themselves alive, each until its expires_at; rows whose time passed
-- are deleted by the next heartbeat of any node.
CREATE TABLE cluster_nodes (
    node       TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

-- Until when the endpoint's circuit breaker is open (no deliveries are sent); NULL, or a time
-- in the past, while it is closed.
ALTER TABLE endpoints ADD COLUMN circuit_open_until INTEGER;

-- Retention deletes the oldest messages first, in batches.
CREATE INDEX messages_by_created_at ON messages (created_at);
