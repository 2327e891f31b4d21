-- The import graph (SPEC.md §5): one row per literal require("name") in a
-- script's source, written with the script.saved event that carries it. The
-- edge names a module, not a script: the module may not exist yet, or may
-- be deleted with ?force=true and created again, and the edge still holds.
-- "Used by" of module M: the scripts of M's app with an edge named M.name.
CREATE TABLE script_imports (
    script_id   text NOT NULL REFERENCES scripts (id) ON DELETE CASCADE,
    app_id      text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    module_name text NOT NULL CHECK (module_name ~ '^[a-zA-Z_][a-zA-Z0-9_]{0,63}$'),
    PRIMARY KEY (script_id, module_name)
);
CREATE INDEX script_imports_module_idx ON script_imports (app_id, module_name);
