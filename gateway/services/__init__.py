"""Use cases: one function per command. Load through a unit of work, call the domain,
commit (the unit of work writes the saved aggregates' events to the outbox)."""
