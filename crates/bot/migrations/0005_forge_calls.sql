-- How long the last run's forge calls took, one row per call name: a JSON array of
-- {call, count, ms, retries, failed}. NULL for a run without forge calls (a plain git
-- target) or recorded before this column existed.
ALTER TABLE deliveries ADD COLUMN forge_calls TEXT;
