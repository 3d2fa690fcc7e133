"""Incidents: their vocabulary, identity, state store and timeline."""
