-- The R2 etag of the bytes `complete` verified. A consumer that reads the object with
-- `onlyIf: { etagMatches }` gets exactly the verified version or nothing.
ALTER TABLE uploads ADD COLUMN etag TEXT;

-- The storage route looks an upload up by its object key on every signed PUT (the "no bytes swapped
-- after verification" guard).
CREATE UNIQUE INDEX uploads_object_key ON uploads(object_key);
