"""Standard Webhooks signing and durable delivery. Imports no `gateway` module."""
