-- Attendance matched by email, by the invitee's given display name, or by elimination.
ALTER TABLE participants ADD COLUMN invited_name text;   -- the display name the caller gave for an invitee
ALTER TABLE participants ADD COLUMN matched_by text
    CHECK (matched_by IN ('email', 'display_name', 'elimination'));
