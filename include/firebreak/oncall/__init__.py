"""The on-call loop: who is told and who is paged, acknowledgement, escalation, the clock as metrics.

Notifications follow the policy's severity routes (``notify:``) into an outbox; the severity
matrix's deadlines escalate; the incident clock is exported as histograms. Plain Python,
except :mod:`firebreak.oncall.notifiers`: the one module that sends through Airflow's notifiers.
"""
