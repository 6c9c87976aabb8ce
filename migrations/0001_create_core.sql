-- Accounts own keys, uploads and jobs. The id is the account name given at key creation, or a generated one.
CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  created_at TEXT NOT NULL
);

-- API keys: only the SHA-256 of the key is stored; `prefix` is the readable start shown in listings.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  name TEXT NOT NULL,
  prefix TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  scopes TEXT NOT NULL,            -- JSON array of scopes
  created_at TEXT NOT NULL,
  last_used_at TEXT,
  revoked_at TEXT
);
CREATE INDEX api_keys_account ON api_keys(account_id);

-- Uploads: bytes live in R2 under `object_key`; the row says whether they were verified.
CREATE TABLE uploads (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  filename TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT,
  status TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'failed', 'expired')),
  object_key TEXT NOT NULL,
  error TEXT,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  completed_at TEXT
);
CREATE INDEX uploads_account ON uploads(account_id, created_at);
CREATE INDEX uploads_pending ON uploads(status, expires_at);

-- The job index for listing and usage. The truth of each job lives in its Durable Object; every
-- transition is mirrored here.
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
  model TEXT NOT NULL,
  backend_name TEXT,
  backend_kind TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  error_code TEXT,
  gpu_seconds REAL,
  cost_usd REAL,
  created_at TEXT NOT NULL,
  started_at TEXT,
  completed_at TEXT,
  updated_at TEXT NOT NULL
);
CREATE INDEX jobs_account_created ON jobs(account_id, created_at DESC, id DESC);
CREATE INDEX jobs_account_status ON jobs(account_id, status, created_at DESC, id DESC);

-- Idempotency-Key records, kept 24 h: same key and body → the same job; other body → 422; in flight → 409.
CREATE TABLE idempotency_keys (
  account_id TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  job_id TEXT,
  state TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  PRIMARY KEY (account_id, idem_key)
);
CREATE INDEX idempotency_expiry ON idempotency_keys(expires_at);

-- GPU backends. `config` holds the non-secret settings as JSON; `secrets` the secret ones, AES-GCM encrypted.
CREATE TABLE backends (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('runpod', 'pod', 'comfyui', 'vastai')),
  enabled INTEGER NOT NULL DEFAULT 1,
  priority INTEGER NOT NULL DEFAULT 0,
  models TEXT NOT NULL DEFAULT '[]',
  max_concurrency INTEGER NOT NULL DEFAULT 1,
  price_per_second_usd REAL NOT NULL DEFAULT 0,
  config TEXT NOT NULL DEFAULT '{}',
  secrets TEXT,
  last_health TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
