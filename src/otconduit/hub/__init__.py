"""The hub: many sites' uplinks, authenticated and applied idempotently to one store.

``sites`` loads who may send, ``ingest`` checks and applies one message (one transaction
per message), ``subscriber`` reads the broker with a durable session."""
