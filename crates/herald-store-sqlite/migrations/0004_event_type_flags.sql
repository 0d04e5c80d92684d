-- Event types carry several feature flags and a group name (as the Svix SDKs 2.x send them).
-- `feature_flag` keeps the first flag, for tools that read the old column.
ALTER TABLE event_types ADD COLUMN feature_flags TEXT;
ALTER TABLE event_types ADD COLUMN group_name TEXT;
UPDATE event_types SET feature_flags = json_array(feature_flag) WHERE feature_flag IS NOT NULL;
