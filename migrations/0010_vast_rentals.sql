-- vast.ai rentals: each instance a vastai backend rented, from its creation to its confirmed destroy. vast.ai bills
-- the whole rental, boot and idle time included, while jobs carry only their execution time: the difference is what
-- the usage report shows per backend, so the break-even against serverless counts what was really paid.
CREATE TABLE vast_rentals (
  backend_name TEXT NOT NULL,
  instance_id INTEGER NOT NULL,
  dph_usd REAL NOT NULL,           -- the instance's price per hour
  started_at TEXT NOT NULL,        -- created (billing starts)
  ready_at TEXT,                   -- ComfyUI first answered (the end of the boot)
  ended_at TEXT,                   -- destroyed or given up (billing stops); null while it runs
  end_reason TEXT,
  PRIMARY KEY (backend_name, instance_id)
);
CREATE INDEX vast_rentals_window ON vast_rentals(started_at, ended_at);
