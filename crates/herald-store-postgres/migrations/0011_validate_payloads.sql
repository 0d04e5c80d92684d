-- Event types whose messages' payloads are checked against their version's JSON Schema.
ALTER TABLE event_types ADD COLUMN validate_payloads BOOLEAN NOT NULL DEFAULT FALSE;
