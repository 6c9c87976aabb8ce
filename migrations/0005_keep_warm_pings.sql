-- Keep-warm pings: `health_check` jobs the cron sends so a backend's workers stay warm. Each row records how
-- long the ping waited before a worker took it (RunPod `delayTime`): a cold start shows as a long delay, so the
-- table says whether keeping warm (or a pod) is worth its price.
CREATE TABLE keep_warm_pings (
  id TEXT PRIMARY KEY,
  backend_name TEXT NOT NULL,
  backend_kind TEXT NOT NULL,
  remote_id TEXT,
  status TEXT NOT NULL CHECK (status IN ('sent', 'completed', 'failed', 'lost')),
  error TEXT,
  delay_ms INTEGER,
  execution_ms INTEGER,
  sent_at TEXT NOT NULL,
  completed_at TEXT
);
CREATE INDEX keep_warm_pings_status ON keep_warm_pings(status, sent_at);
CREATE INDEX keep_warm_pings_backend ON keep_warm_pings(backend_name, sent_at);
