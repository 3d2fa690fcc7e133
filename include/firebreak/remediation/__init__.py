"""Remediations that change what a model may say or do, beside the registry."""
