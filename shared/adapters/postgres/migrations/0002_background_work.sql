-- When each meeting is next due for a status check and a recording sync: sweeps read only due rows.
ALTER TABLE meetings ADD COLUMN next_check_at timestamptz;
ALTER TABLE meetings ADD COLUMN last_checked_at timestamptz;
ALTER TABLE meetings ADD COLUMN next_sync_at timestamptz;
ALTER TABLE meetings ADD COLUMN last_synced_at timestamptz;
ALTER TABLE meetings ADD COLUMN sync_attempts integer NOT NULL DEFAULT 0;

CREATE INDEX meetings_check_due_idx ON meetings (next_check_at)
    WHERE status IN ('PENDING', 'CREATED', 'SCHEDULED', 'IN_PROGRESS');
CREATE INDEX meetings_sync_due_idx ON meetings (next_sync_at) WHERE next_sync_at IS NOT NULL;

UPDATE meetings SET next_check_at = now() WHERE status IN ('PENDING', 'CREATED', 'SCHEDULED', 'IN_PROGRESS');
UPDATE meetings SET next_sync_at = scheduled_end + interval '10 minutes' WHERE status NOT IN ('CANCELLED', 'FAILED');
