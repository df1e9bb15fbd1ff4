-- The newest deliveries of every endpoint (`python -m ops webhooks deliveries` without --endpoint): without this
-- index the list sorted the whole table, which holds one row per event per endpoint and only grows.
CREATE INDEX webhook_deliveries_newest_idx ON webhook_deliveries (created_at DESC, id DESC);
