-- What the dashboard shows and searches without re-reading each job's body, and the
-- indexes that keep its first page fast with a long history (figures in
-- docs/benchmarks.md). Old rows keep NULL in the new columns; the pages show them as
-- unknown.

-- The names people know a job by (design system, version as "name label", exporter),
-- from the event as received.
ALTER TABLE jobs ADD COLUMN design_system_name TEXT;
ALTER TABLE jobs ADD COLUMN version_name TEXT;
ALTER TABLE jobs ADD COLUMN exporter_name TEXT;
-- The connection (a key of `connections`) the delivery's target used when it was routed.
ALTER TABLE deliveries ADD COLUMN connection TEXT;
-- The newer delivery for the same target that made this one unnecessary.
ALTER TABLE deliveries ADD COLUMN superseded_by TEXT;
-- The last run's changes per directory: a JSON array of {name, added, modified, deleted}.
ALTER TABLE deliveries ADD COLUMN directories TEXT;

CREATE INDEX jobs_by_job_id ON jobs (job_id);
CREATE INDEX deliveries_by_state ON deliveries (state, id);
CREATE INDEX deliveries_by_hook ON deliveries (hook_id, id);
CREATE INDEX deliveries_by_connection ON deliveries (connection, id);
CREATE INDEX deliveries_by_target_key ON deliveries (target_key, id);
