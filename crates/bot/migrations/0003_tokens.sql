-- What changed in the design tokens in a delivery's last run (courier_core::tokens::TokenDiff
-- as JSON, at most 1,000 changes listed, the counts whole); NULL when no token file changed
-- or for a run recorded before this column existed.
ALTER TABLE deliveries ADD COLUMN tokens TEXT;
