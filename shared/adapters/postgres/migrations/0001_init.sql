-- API clients and their keys: a client owns meetings; keys rotate under it.
CREATE TABLE api_clients (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    role        text NOT NULL CHECK (role IN ('service', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    client_id     uuid NOT NULL REFERENCES api_clients (id),
    key_hash      bytea NOT NULL UNIQUE,      -- SHA-256 of the whole key; the key itself is never stored
    display_hint  text NOT NULL,              -- the key's first characters, to tell keys apart
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);

CREATE TABLE meetings (
    id                   uuid PRIMARY KEY,
    client_id            uuid NOT NULL REFERENCES api_clients (id),
    external_reference   text,
    request_fingerprint  text NOT NULL,
    status               text NOT NULL CHECK (status IN
                           ('PENDING', 'CREATED', 'SCHEDULED', 'IN_PROGRESS', 'FINISHED', 'CANCELLED', 'FAILED')),
    organizer_email      text NOT NULL,
    title                text NOT NULL,
    description          text,
    time_zone            text NOT NULL,
    scheduled_start      timestamptz NOT NULL,
    scheduled_end        timestamptz NOT NULL,
    calendar_owner       text,                 -- delegated subject whose primary calendar holds the event
    create_attempt       integer NOT NULL DEFAULT 1,
    google_event_id      text,
    meet_link            text,
    meeting_code         text,
    conference_status    text,                 -- Calendar createRequest status: pending, success, failure
    schedule_version     integer NOT NULL DEFAULT 1,
    failure_reason       text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    cancelled_at         timestamptz,
    finished_at          timestamptz,
    CHECK (scheduled_start < scheduled_end),
    UNIQUE (client_id, external_reference)
);

-- Keyset pagination, newest first, for one client and for admins.
CREATE INDEX meetings_client_created_idx ON meetings (client_id, created_at DESC, id DESC);
CREATE INDEX meetings_created_idx ON meetings (created_at DESC, id DESC);
CREATE INDEX meetings_organizer_idx ON meetings (lower(organizer_email));
CREATE INDEX meetings_scheduled_start_idx ON meetings (scheduled_start);

CREATE TABLE participants (
    id                  bigserial PRIMARY KEY,
    meeting_id          uuid NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    email               text,                  -- null for joiners Meet could not tie to an email
    role                text NOT NULL CHECK (role IN ('organizer', 'guest', 'other')),
    position            integer NOT NULL,
    display_name        text,
    meet_participant    text,                  -- Meet's participant resource name, for unmatched joiners
    attended            boolean,
    joined_at           timestamptz,
    left_at             timestamptz,
    attended_seconds    integer,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (email IS NOT NULL OR role = 'other')
);
CREATE UNIQUE INDEX participants_email_uidx ON participants (meeting_id, lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX participants_meet_uidx ON participants (meeting_id, meet_participant)
    WHERE meet_participant IS NOT NULL;

CREATE TABLE recordings (
    id                bigserial PRIMARY KEY,
    meeting_id        uuid NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    meet_name         text NOT NULL,          -- conferenceRecords/x/recordings/y
    state             text NOT NULL,
    drive_file_id     text,
    drive_file_url    text,
    duration_seconds  integer,
    available_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (meeting_id, meet_name)
);

CREATE TABLE transcripts (
    id                bigserial PRIMARY KEY,
    meeting_id        uuid NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    meet_name         text NOT NULL,
    state             text NOT NULL,
    document_id       text,
    document_url      text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (meeting_id, meet_name)
);
