-- Patient-safe rooms: each meeting's Meet room policy and whether Meet has it yet (APPLIED, PENDING, FAILED).
-- Meetings made before this migration keep all four null: no policy was asked for, none is applied to them.
ALTER TABLE meetings ADD COLUMN room_access_type text CHECK (room_access_type IN ('OPEN', 'TRUSTED', 'RESTRICTED'));
ALTER TABLE meetings ADD COLUMN room_auto_recording boolean;
ALTER TABLE meetings ADD COLUMN room_auto_transcription boolean;
ALTER TABLE meetings ADD COLUMN room_state text CHECK (room_state IN ('APPLIED', 'PENDING', 'FAILED'));
ALTER TABLE meetings ADD CONSTRAINT meetings_room_complete CHECK (
    (room_access_type IS NULL AND room_auto_recording IS NULL AND room_auto_transcription IS NULL
     AND room_state IS NULL)
    OR (room_access_type IS NOT NULL AND room_auto_recording IS NOT NULL AND room_auto_transcription IS NOT NULL
        AND room_state IS NOT NULL));

-- Clinician availability: an organizer's meetings that hold their slot (in creation or live), found by the
-- organizer and a start bounded on both sides (a meeting lasts at most 24 h), for `reject_conflicts`.
CREATE INDEX meetings_organizer_slots_idx ON meetings (lower(organizer_email), scheduled_start)
    WHERE status IN ('PENDING', 'CREATED', 'SCHEDULED', 'IN_PROGRESS');
