"""The staff console: finance, support and admin pages on their own listener."""
