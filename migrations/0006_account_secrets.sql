-- Per-account secrets, each sealed with BACKEND_SECRETS_KEY (src/lib/secret-box.ts), created on first use.
-- `webhook_secret` signs outbound webhooks (`whsec_…`, Standard Webhooks). After a rotation the previous secret
-- keeps signing beside the new one until `webhook_previous_until`, so receivers can switch without a gap.
-- `share_secret` keys the signed share links of finished videos; rotating it revokes every outstanding link.
CREATE TABLE account_secrets (
  account_id TEXT PRIMARY KEY REFERENCES accounts(id),
  webhook_secret TEXT NOT NULL,
  webhook_previous TEXT,
  webhook_previous_until TEXT,
  share_secret TEXT NOT NULL,
  created_at TEXT NOT NULL,
  webhook_rotated_at TEXT,
  share_rotated_at TEXT
);
