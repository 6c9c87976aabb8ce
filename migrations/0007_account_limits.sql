-- Per-account limits (docs/limits.md). NULL: the Worker default from [vars] (RATE_LIMIT_REQUESTS_PER_MINUTE,
-- RATE_LIMIT_JOBS_PER_MINUTE, MAX_CONCURRENT_JOBS, MONTHLY_SPEND_CAP_USD).
ALTER TABLE accounts ADD COLUMN requests_per_minute INTEGER;
ALTER TABLE accounts ADD COLUMN jobs_per_minute INTEGER;
ALTER TABLE accounts ADD COLUMN max_concurrent_jobs INTEGER;
ALTER TABLE accounts ADD COLUMN monthly_spend_cap_usd REAL;

-- The monthly spend cap sums an account's cost by completion time on every job creation.
CREATE INDEX jobs_account_completed ON jobs(account_id, completed_at);
