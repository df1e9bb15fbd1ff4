-- Push events (webhooks). An endpoint belongs to one API client; every change of a meeting writes its events to
-- the outbox (webhook_events) in the change's own transaction, with one delivery per event and subscribed
-- endpoint. Deliveries are then sent through Cloud Tasks; a sweep picks up any whose task was never enqueued.
CREATE TABLE webhook_endpoints (
    id           uuid PRIMARY KEY,
    client_id    uuid NOT NULL REFERENCES api_clients (id),
    url          text NOT NULL,
    event_types  text[] NOT NULL,             -- the event types it receives (all of them unless narrowed)
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz                   -- set when the receiver answered 410 Gone: nothing more is sent
);
CREATE INDEX webhook_endpoints_client_idx ON webhook_endpoints (client_id, created_at DESC, id DESC);

-- Signing secrets, encrypted with a key kept outside the database (AES-256-GCM). The current secret has no
-- expiry; a rotated-out one keeps signing until expires_at.
CREATE TABLE webhook_secrets (
    id           bigserial PRIMARY KEY,
    endpoint_id  uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    ciphertext   bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz
);
CREATE UNIQUE INDEX webhook_secrets_current_uidx ON webhook_secrets (endpoint_id) WHERE expires_at IS NULL;
CREATE INDEX webhook_secrets_endpoint_idx ON webhook_secrets (endpoint_id, created_at DESC);

-- The outbox: one row per event, numbered per meeting, holding the exact body every attempt sends and signs.
CREATE TABLE webhook_events (
    id          uuid PRIMARY KEY,              -- the webhook-id header, the same on every attempt
    meeting_id  uuid NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    client_id   uuid NOT NULL REFERENCES api_clients (id),
    sequence    integer NOT NULL,
    type        text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (meeting_id, sequence)
);

CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY,
    event_id          uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id       uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    last_status_code  integer,
    last_error        text,
    last_attempt_at   timestamptz,
    next_attempt_at   timestamptz,             -- while pending: when the next attempt is due
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
-- The sweep reads only pending deliveries that are overdue.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
