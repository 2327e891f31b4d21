-- KV entries with a TTL (kv.set.v1's expires_at): past it a key reads as
-- absent at once, and its app's actor records kv.expired.v1 and drops it.
ALTER TABLE kv_entries ADD COLUMN expires_at timestamptz;
CREATE INDEX kv_entries_expiry_idx ON kv_entries (app_id, expires_at)
    WHERE expires_at IS NOT NULL;
