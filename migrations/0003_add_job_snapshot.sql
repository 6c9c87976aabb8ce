-- The job as last mirrored from its Durable Object (JSON of the public fields), so listings render without a
-- call per job. The Durable Object stays the truth; this copy is rewritten on every transition.
ALTER TABLE jobs ADD COLUMN snapshot TEXT;
