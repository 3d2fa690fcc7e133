"""Containment: the circuit breaker the serving gateway keeps per model.

The routing state (champion | fallback model | heuristic | disabled) lives in the state
DB (:mod:`firebreak.incidents.store`); incidents move it by compare-and-set.
"""
