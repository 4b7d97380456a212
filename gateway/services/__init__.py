"""Use cases: one function per command. Load through a unit of work, call the domain,
publish the domain's events to the outbox, commit."""
