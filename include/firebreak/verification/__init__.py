"""Verification: the promotion gate, the only path that moves ``champion``."""
