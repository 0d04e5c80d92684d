-- Portal-token sessions (Svix's `sessionId` on app-portal-access) and expiring an
-- application's tokens at once (`POST /api/v1/auth/app/{app_id}/expire-all`, optionally only
-- those of some sessions). session_id is NULL for tokens minted without one and for
-- organisation tokens; api_tokens_by_app finds an application's tokens.
ALTER TABLE api_tokens ADD COLUMN session_id TEXT;
