-- Leasing an ordered lane's head without reading the queue behind it. Pending deliveries are
-- indexed in two disjoint parts: those in no lane (leased in due order, as before) and those
-- in a lane (only for counts and the next due time). A lease finds each lane's head by
-- skipping from one lane to the next through deliveries_lane_holders (its first entry per
-- endpoint and lane is the head), so a lane's backlog is never scanned. Every pending
-- delivery is still in exactly one due index, so writes cost what they did.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 1 AND lane IS NULL;
CREATE INDEX deliveries_due_in_lanes ON deliveries (next_attempt_at, id)
    WHERE status = 1 AND lane IS NOT NULL;
