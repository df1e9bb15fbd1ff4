-- A meeting's people by meeting id. The two unique indexes on participants are partial (email IS NOT NULL,
-- meet_participant IS NOT NULL), so they cannot serve `WHERE meeting_id = ...` and every read of a meeting
-- scanned the whole table: reads and sweeps grew with the table instead of with what they touch.
CREATE INDEX participants_meeting_idx ON participants (meeting_id);
