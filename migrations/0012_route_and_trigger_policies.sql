-- Routes grant their scripts capabilities (like triggers), and async routes
-- and triggers carry their own retry policy; NULL: the defaults.
ALTER TABLE routes
    ADD COLUMN capabilities text[],
    ADD COLUMN retry jsonb;
ALTER TABLE triggers ADD COLUMN retry jsonb;
