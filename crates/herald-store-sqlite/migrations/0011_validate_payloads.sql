-- Event types whose messages' payloads are checked against their version's JSON Schema.
ALTER TABLE event_types ADD COLUMN validate_payloads INTEGER NOT NULL DEFAULT 0;
