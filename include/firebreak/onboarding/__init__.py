"""Putting a team's own model under Firebreak: onboarding, the wiring check, log and label imports.

A flow like the stages and the audits: it composes the registry, the contracts, detection
and the policy, and decides nothing they decide. ``firebreak onboard``, ``check``,
``policy validate``, ``log import``, ``labels import`` and ``open`` (:mod:`.cli`).
"""
