"""Model policies: one validated YAML file per model, the single source of its SOP.

The schema and loader live in :mod:`firebreak.policy.schema`; the metric vocabulary the
policies name, in :mod:`firebreak.policy.metrics` (light: commands that only name metrics do
not pay for pydantic and the schema's models).
"""
