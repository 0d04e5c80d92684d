-- Ordered delivery lanes. An ordered endpoint delivers one message at a time per lane, in the
-- order Herald accepted them; a lane is the endpoint and the message's ordering key ('' for
-- messages without one). deliveries.lane is NULL for every delivery that is not in a lane
-- (unordered endpoints, manual attempts).
-- ordered_on_exhausted: 0 skip (the lane moves on), 1 pause (the lane waits, `held`).
ALTER TABLE endpoints ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN ordered_on_exhausted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN lane TEXT;
-- An exhausted head of a paused lane: failed (status 2), and still holding its lane until a
-- resend or recover queues it again.
ALTER TABLE deliveries ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
-- The deliveries that hold a lane: not yet delivered or given up (pending, sending), or held.
CREATE INDEX deliveries_lane_holders ON deliveries (endpoint_id, lane, id)
    WHERE lane IS NOT NULL AND (status IN (1, 3) OR held = 1);
