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
