-- Indexes for operators: an application's statistics over a window (messages and attempts by
-- creation time, attempts by status from the index alone), and attempt retention (the oldest
-- attempts first).
CREATE INDEX messages_by_app_time ON messages (app_id, created_at);
CREATE INDEX attempts_by_app_time ON attempts (app_id, created_at, status);
CREATE INDEX attempts_by_created_at ON attempts (created_at);
