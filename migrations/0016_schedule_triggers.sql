-- Schedule triggers (trigger kind 'schedule', schedule.fired.v1): the cron
-- expression, its time zone and the latest fired time.
ALTER TABLE triggers DROP CONSTRAINT triggers_kind_check;
ALTER TABLE triggers
    ADD CONSTRAINT triggers_kind_check
        CHECK (kind IN ('kv', 'docs', 'dead_letter', 'schedule')),
    ADD COLUMN cron text,
    ADD COLUMN timezone text,
    ADD COLUMN last_fired_at timestamptz;
