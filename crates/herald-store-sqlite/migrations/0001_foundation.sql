-- Herald's foundation schema: tokens, applications, endpoints, event types, idempotency keys.
-- Timestamps are INTEGER microseconds since the Unix epoch (UTC).

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    app_id      TEXT REFERENCES applications(id) ON DELETE CASCADE,
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);

CREATE TABLE applications (
    id            TEXT PRIMARY KEY,
    uid           TEXT UNIQUE,
    name          TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    throttle_rate INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE endpoints (
    id             TEXT PRIMARY KEY,
    app_id         TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    uid            TEXT,
    url            TEXT NOT NULL,
    description    TEXT NOT NULL,
    disabled       INTEGER NOT NULL,
    event_types    TEXT,
    channels       TEXT,
    throttle_rate  INTEGER,
    metadata       TEXT NOT NULL,
    sealed_secrets BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_by_app ON endpoints (app_id, id);

CREATE TABLE event_types (
    name         TEXT PRIMARY KEY,
    description  TEXT NOT NULL,
    archived     INTEGER NOT NULL,
    deprecated   INTEGER NOT NULL,
    feature_flag TEXT,
    schemas      TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE idempotency_keys (
    key         TEXT PRIMARY KEY,
    completed   INTEGER NOT NULL,
    status      INTEGER,
    body        BLOB,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
