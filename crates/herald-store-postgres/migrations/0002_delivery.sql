-- Messages, their deliveries to endpoints (the queue shared by every node), and attempts.
-- Status codes follow Svix: 0 success, 1 pending, 2 failed, 3 sending (leased by a worker).
-- Trigger codes: 0 scheduled, 1 manual.

CREATE TABLE messages (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    app_id             TEXT COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    event_type         TEXT COLLATE "C" NOT NULL,
    event_id           TEXT COLLATE "C",
    channels           TEXT[],
    -- The payload exactly as received; NULL once expunged or expired.
    payload            BYTEA,
    created_at         TIMESTAMPTZ NOT NULL,
    deliver_at         TIMESTAMPTZ,
    payload_expires_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX messages_by_event_id ON messages (app_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX messages_by_app ON messages (app_id, id);
CREATE INDEX messages_by_payload_expiry ON messages (payload_expires_at) WHERE payload IS NOT NULL;

CREATE TABLE deliveries (
    id               BIGSERIAL PRIMARY KEY,
    msg_id           TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    app_id           TEXT COLLATE "C" NOT NULL,
    endpoint_id      TEXT COLLATE "C" NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    status           SMALLINT NOT NULL,
    trigger          SMALLINT NOT NULL,
    -- Attempts recorded so far; a lease that expired without a record does not count.
    attempts         INTEGER NOT NULL,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    -- The fencing token of the current lease (status 3), from delivery_lease_ids.
    lease_id         BIGINT,
    lease_expires_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
-- The queue: pending deliveries by due time, leased ones by lease expiry.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 1;
CREATE INDEX deliveries_leased ON deliveries (lease_expires_at, id) WHERE status = 3;
CREATE INDEX deliveries_by_msg ON deliveries (msg_id, endpoint_id, id);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, msg_id, id);

-- Lease ids: one per lease call, unique across every node sharing the database. Sequences are
-- not rolled back, so a number is never handed out twice.
CREATE SEQUENCE delivery_lease_ids AS BIGINT;

CREATE TABLE attempts (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    msg_id               TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    app_id               TEXT COLLATE "C" NOT NULL,
    endpoint_id          TEXT COLLATE "C" NOT NULL,
    url                  TEXT NOT NULL,
    status               SMALLINT NOT NULL,
    response_status_code INTEGER NOT NULL,
    response             TEXT,
    response_duration_ms BIGINT NOT NULL,
    trigger              SMALLINT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX attempts_by_msg ON attempts (msg_id, id);
CREATE INDEX attempts_by_endpoint ON attempts (endpoint_id, id);
