-- Portal-token sessions (Svix's `sessionId` on app-portal-access) and expiring an
-- application's tokens at once (`POST /api/v1/auth/app/{app_id}/expire-all`, optionally only
-- those of some sessions). session_id is NULL for tokens minted without one and for
-- organisation tokens.
ALTER TABLE api_tokens ADD COLUMN session_id TEXT;
CREATE INDEX IF NOT EXISTS api_tokens_by_app ON api_tokens (app_id) WHERE app_id IS NOT NULL;
