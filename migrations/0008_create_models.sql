-- Model manifests registered through the admin API (docs/models.md). Every version is kept: a job records the
-- version it ran, and a version's content never changes (registering it again with other content is refused).
CREATE TABLE model_versions (
  id TEXT NOT NULL,
  version TEXT NOT NULL,
  manifest TEXT NOT NULL,          -- the manifest JSON as validated
  digest TEXT NOT NULL,            -- sha256 of its canonical JSON
  created_at TEXT NOT NULL,
  PRIMARY KEY (id, version)
);

-- Which version of each model jobs run now. A model with no row runs its shipped manifest (models/*.json);
-- `retired_at` set: jobs can no longer name it (the ones running finish).
CREATE TABLE models (
  id TEXT PRIMARY KEY,
  version TEXT NOT NULL,
  retired_at TEXT,
  updated_at TEXT NOT NULL
);
