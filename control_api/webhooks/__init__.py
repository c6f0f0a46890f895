"""Webhooks: events announced by the store, delivered signed and retried by the dispatcher."""
