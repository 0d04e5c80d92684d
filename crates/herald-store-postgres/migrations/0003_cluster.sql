-- What several Herald nodes share through the database (node heartbeats, circuit breakers),
-- and the index message retention deletes by.

-- Nodes that announced themselves alive, each until its expires_at; rows whose time passed
-- are deleted by the next heartbeat of any node.
CREATE TABLE cluster_nodes (
    node       TEXT COLLATE "C" PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);

-- Until when the endpoint's circuit breaker is open (no node sends to it); NULL, or a time
-- in the past, while it is closed.
ALTER TABLE endpoints ADD COLUMN circuit_open_until TIMESTAMPTZ;

-- Retention deletes the oldest messages first, in batches. (A plain CREATE INDEX: sqlx runs a
-- migration in a transaction, where CONCURRENTLY is not allowed; it blocks writes to messages
-- while it builds, once, when upgrading a large database.)
CREATE INDEX messages_by_created_at ON messages (created_at);
