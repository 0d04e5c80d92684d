-- Messages, their deliveries to endpoints (the queue), and delivery attempts.
-- Status codes follow Svix: 0 success, 1 pending, 2 failed, 3 sending (leased by a worker).
-- Trigger codes: 0 scheduled, 1 manual.

CREATE TABLE messages (
    id                 TEXT PRIMARY KEY,
    app_id             TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    event_type         TEXT NOT NULL,
    event_id           TEXT,
    channels           TEXT,
    payload            BLOB,
    created_at         INTEGER NOT NULL,
    deliver_at         INTEGER,
    payload_expires_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX messages_by_event_id ON messages (app_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX messages_by_app ON messages (app_id, id);
CREATE INDEX messages_by_payload_expiry ON messages (payload_expires_at) WHERE payload IS NOT NULL;

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    msg_id           TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    app_id           TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    status           INTEGER NOT NULL,
    trigger          INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    lease_id         INTEGER,
    lease_expires_at INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 1;
CREATE INDEX deliveries_leased ON deliveries (lease_expires_at) WHERE status = 3;
CREATE INDEX deliveries_by_msg ON deliveries (msg_id, endpoint_id);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, msg_id);

CREATE TABLE attempts (
    id                   TEXT PRIMARY KEY,
    msg_id               TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    app_id               TEXT NOT NULL,
    endpoint_id          TEXT NOT NULL,
    url                  TEXT NOT NULL,
    status               INTEGER NOT NULL,
    response_status_code INTEGER NOT NULL,
    response             TEXT,
    response_duration_ms INTEGER NOT NULL,
    trigger              INTEGER NOT NULL,
    created_at           INTEGER NOT NULL
);
CREATE INDEX attempts_by_msg ON attempts (msg_id, id);
CREATE INDEX attempts_by_endpoint ON attempts (endpoint_id, id);

-- When the endpoint started failing without a success since; NULL while healthy.
ALTER TABLE endpoints ADD COLUMN failing_since INTEGER;
