"""Chain adapters behind one small interface. Imports no `gateway` module."""
