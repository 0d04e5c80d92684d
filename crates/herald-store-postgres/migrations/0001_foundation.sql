-- Herald's foundation schema on PostgreSQL: tokens, applications, endpoints, event types,
-- idempotency keys.
--
-- Keys that lists are ordered by (ids, uids, event-type names) are COLLATE "C": keyset paging
-- must compare bytes, as SQLite does, whatever the database's default collation (in a
-- natural-language collation "app_a…" and "app_B…" sort the other way round).

CREATE TABLE applications (
    id            TEXT COLLATE "C" PRIMARY KEY,
    uid           TEXT COLLATE "C" UNIQUE,
    name          TEXT NOT NULL,
    metadata      JSONB NOT NULL,
    throttle_rate INTEGER,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_tokens (
    id          TEXT COLLATE "C" PRIMARY KEY,
    hash        BYTEA NOT NULL UNIQUE,
    app_id      TEXT COLLATE "C" REFERENCES applications(id) ON DELETE CASCADE,
    description TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ
);
-- Deleting an application finds its tokens through this index.
CREATE INDEX api_tokens_by_app ON api_tokens (app_id) WHERE app_id IS NOT NULL;

CREATE TABLE endpoints (
    id             TEXT COLLATE "C" PRIMARY KEY,
    app_id         TEXT COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    uid            TEXT COLLATE "C",
    url            TEXT NOT NULL,
    description    TEXT NOT NULL,
    disabled       BOOLEAN NOT NULL,
    -- NULL means no filter; an empty array filters everything out, as in the model.
    event_types    TEXT[],
    channels       TEXT[],
    throttle_rate  INTEGER,
    metadata       JSONB NOT NULL,
    -- Keys, custom headers and bearer token, sealed by herald_core::sealed.
    sealed_secrets BYTEA NOT NULL,
    -- When the endpoint started failing without a success since; NULL while healthy.
    failing_since  TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT endpoints_uid_per_app UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_by_app ON endpoints (app_id, id);
CREATE INDEX endpoints_failing ON endpoints (failing_since)
    WHERE failing_since IS NOT NULL AND NOT disabled;

CREATE TABLE event_types (
    name         TEXT COLLATE "C" PRIMARY KEY,
    description  TEXT NOT NULL,
    archived     BOOLEAN NOT NULL,
    deprecated   BOOLEAN NOT NULL,
    feature_flag TEXT,
    schemas      JSONB,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE idempotency_keys (
    key        TEXT PRIMARY KEY,
    completed  BOOLEAN NOT NULL,
    status     INTEGER,
    body       BYTEA,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
