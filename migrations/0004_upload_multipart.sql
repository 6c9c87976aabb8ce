-- Multipart uploads: the R2 multipart upload id and the one part size every part but the last must have
-- (R2 refuses unequal non-trailing parts), so `complete` can assemble and `GET` can list what is missing.
ALTER TABLE uploads ADD COLUMN multipart_upload_id TEXT;
ALTER TABLE uploads ADD COLUMN part_size INTEGER;
-- Where a URL input was fetched from (null for client uploads).
ALTER TABLE uploads ADD COLUMN source_url TEXT;
-- What the content checks measured, JSON `{ width?, height?, duration_s? }`.
ALTER TABLE uploads ADD COLUMN media TEXT;

-- Parts stored through the Worker-signed part URLs (the R2 flavour lists them with S3 ListParts instead).
CREATE TABLE upload_parts (
  upload_id TEXT NOT NULL REFERENCES uploads(id),
  part_number INTEGER NOT NULL,
  etag TEXT NOT NULL,
  size INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (upload_id, part_number)
);

-- Dedup: an account's ready upload with a given sha256.
CREATE INDEX uploads_account_sha256 ON uploads(account_id, sha256, status);
