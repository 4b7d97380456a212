"""Packetra gateway: privacy-first cryptocurrency payment and signup gateway."""
