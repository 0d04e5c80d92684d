-- Endpoint consent (the CloudEvents webhook handshake). `consent` is the endpoint's setting:
-- NULL follows the organisation's, 0 off, 1 cloudevents. The other columns are what the
-- endpoint answered, written only by the consent commands (never by an endpoint update):
-- consent_origin the URL origin it is about; consent_status 1 pending, 2 granted, 3 refused;
-- consent_rate the granted requests per minute (NULL: no limit); consent_reason why it was
-- refused; consent_at when it was decided; consent_expires_at until when a
-- pending consent can be granted through the callback, whose token's SHA-256 (hex) is
-- consent_callback (NULL once spent or replaced).
ALTER TABLE endpoints ADD COLUMN consent SMALLINT;
ALTER TABLE endpoints ADD COLUMN consent_origin TEXT COLLATE "C";
ALTER TABLE endpoints ADD COLUMN consent_status SMALLINT;
ALTER TABLE endpoints ADD COLUMN consent_rate BIGINT;
ALTER TABLE endpoints ADD COLUMN consent_reason TEXT;
ALTER TABLE endpoints ADD COLUMN consent_at TIMESTAMPTZ;
ALTER TABLE endpoints ADD COLUMN consent_expires_at TIMESTAMPTZ;
ALTER TABLE endpoints ADD COLUMN consent_callback TEXT COLLATE "C";
CREATE UNIQUE INDEX endpoints_consent_callback ON endpoints (consent_callback)
    WHERE consent_callback IS NOT NULL;
