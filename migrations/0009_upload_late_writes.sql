-- When the cron last cleared the upload's own key (`uploads/{account}/{upload}`) after its URLs expired: a PUT that
-- was still streaming when `complete` ran (or when the upload failed) may have left bytes there that nothing reads,
-- the verified copy living under `verified/` (src/storage/pin.ts). Null until swept; swept once.
ALTER TABLE uploads ADD COLUMN upload_key_swept_at TEXT;
