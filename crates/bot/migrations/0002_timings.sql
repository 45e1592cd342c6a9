-- How long each phase of a delivery's last run took (download, validate, plan, push,
-- pull_request, total), as a JSON object of milliseconds; NULL before it ran, or for a run
-- recorded before this column existed.
ALTER TABLE deliveries ADD COLUMN timings TEXT;
