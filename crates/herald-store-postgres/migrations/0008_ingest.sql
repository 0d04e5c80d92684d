-- The ingest gateway: sources (where providers send webhooks for the user), their refusal
-- log, and the envelope of an ingested message (its content type and forwarded headers).
--
-- A source is backed by an application of its own (app_id; hidden from the application
-- list): its destinations are that application's endpoints, its events its messages.
-- token_hash is the SHA-256 (hex) of the token in the ingest URL (found by it), sealed_token
-- the token sealed (to show the URL again); previous_token_hash the
-- one a rotation replaced, accepted until previous_token_expires_at. sealed_config is the
-- type's configuration (secrets), sealed with the encryption key.
CREATE TABLE ingest_sources (
    id                        TEXT COLLATE "C" PRIMARY KEY,
    app_id                    TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES applications(id) ON DELETE CASCADE,
    uid                       TEXT COLLATE "C" UNIQUE,
    name                      TEXT NOT NULL,
    type                      TEXT NOT NULL,
    sealed_config             BYTEA NOT NULL,
    metadata                  JSONB NOT NULL,
    token_hash                TEXT COLLATE "C" NOT NULL UNIQUE,
    sealed_token              BYTEA NOT NULL,
    previous_token_hash       TEXT COLLATE "C",
    previous_token_expires_at TIMESTAMPTZ,
    created_at                TIMESTAMPTZ NOT NULL,
    updated_at                TIMESTAMPTZ NOT NULL
);
CREATE INDEX ingest_sources_previous_token ON ingest_sources (previous_token_hash)
    WHERE previous_token_hash IS NOT NULL;

-- reason: missing_signature, bad_signature, stale_timestamp, too_large. Only the newest
-- entries of each source are kept (the store trims as it records).
CREATE TABLE ingest_refusals (
    id        BIGSERIAL PRIMARY KEY,
    source_id TEXT COLLATE "C" NOT NULL REFERENCES ingest_sources(id) ON DELETE CASCADE,
    reason    TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
    address   TEXT NOT NULL
);
CREATE INDEX ingest_refusals_by_source ON ingest_refusals (source_id, id);

-- JSON {"contentType", "headers"}; NULL for messages sent through the API.
ALTER TABLE messages ADD COLUMN envelope TEXT;
