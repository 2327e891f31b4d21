-- Projections of the KV and document stores (written in the events' transaction).
CREATE TABLE kv_entries (
    app_id     text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    collection text NOT NULL,
    key        text NOT NULL COLLATE "C",
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, collection, key)
);

CREATE TABLE docs (
    app_id     text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    collection text NOT NULL,
    -- time-ordered ids: the default order of a collection is creation order
    id         text NOT NULL COLLATE "C",
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, collection, id)
);
-- Equality filters of the query DSL compile to containment (@>) on the document
-- nested under one key naming its app and collection. jsonb_path_ops hashes
-- each value with its whole path, scope included, so one GIN index serves every
-- tenant and a lookup reads only the entries of the queried collection.
CREATE FUNCTION picloud_doc_scope(app_id text, collection text, data jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_set('{}'::jsonb, ARRAY[app_id || '/' || collection], data);

CREATE INDEX docs_scoped_data_idx ON docs
    USING gin (picloud_doc_scope(app_id, collection, data) jsonb_path_ops);
