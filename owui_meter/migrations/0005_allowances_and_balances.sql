-- One-off allowances that count from their creation; balances that deduct every answer recorded after they began.
-- One-off allowances (period 'none') count spend from when they began, not from a user's first
-- answer ever. Each keeps ``since``; the spend counter of period 'none' is kept per start time
-- (start = since as text), so allowances begun at different times count different answers.
ALTER TABLE budgets ADD COLUMN since INTEGER;  -- unix ms a one-off allowance counts from; NULL otherwise

UPDATE budgets SET since = created WHERE period = 'none';

DELETE FROM spend WHERE period = 'none';

INSERT INTO spend (user_id, period, start, cost_nano)
SELECT e.user_id, 'none', CAST(b.since AS TEXT), sum(e.cost_nano)
FROM (SELECT DISTINCT since FROM budgets WHERE period = 'none') b JOIN events e ON e.ts >= b.since
GROUP BY e.user_id, b.since;

-- A prepaid balance deducts the answers recorded after it began: those with an id above
-- after_event. (Comparing answer times with the balance's start failed for a first answer stamped
-- in whole seconds just before the millisecond its balance began.) Spent is recounted that way,
-- except where retention has pruned answers the balance had counted.
ALTER TABLE balances ADD COLUMN after_event INTEGER NOT NULL DEFAULT 0;

UPDATE balances SET after_event = coalesce((SELECT max(id) FROM events WHERE received < balances.since), 0);

UPDATE balances SET spent_nano = (
    SELECT coalesce(sum(e.cost_nano), 0) FROM events e WHERE e.user_id = balances.user_id AND e.id > balances.after_event)
WHERE since >= coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'retention.pruned_before'), 0);
