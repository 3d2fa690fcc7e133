"""Investigation: golden evaluation, lineage trace, triage signals and diagnosis."""
