-- Deliveries and attempts no longer reference their message through a foreign key: the
-- check cost every delivery and every attempt a lookup and a logged row lock on the message
-- (measured in BENCHMARKS.md). What the key guarded is now done by the statements:
-- retention deletes a message's deliveries and attempts with it, deleting an application
-- deletes its attempts (its deliveries go with its endpoints), and a resend or recover
-- locks the message it queues again (`FOR KEY SHARE`), so retention can't delete it meanwhile.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_msg_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_msg_id_fkey;
