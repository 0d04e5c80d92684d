-- Payload versions and transformations. messages.payload_version is the version of its event
-- type's payload a message holds; endpoints.payload_version the version an endpoint is pinned
-- to (NULL: as published); event_types.converters a JSON object from version N to the source
-- of `function convert(payload)` turning a version-N payload into a version N-1 one;
-- endpoints.transformation_* the endpoint's `function handler(webhook)`, run when enabled.
ALTER TABLE messages ADD COLUMN payload_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE endpoints ADD COLUMN payload_version INTEGER;
ALTER TABLE endpoints ADD COLUMN transformation_code TEXT;
ALTER TABLE endpoints ADD COLUMN transformation_enabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE endpoints ADD COLUMN transformation_updated_at TIMESTAMPTZ;
ALTER TABLE event_types ADD COLUMN converters TEXT;
