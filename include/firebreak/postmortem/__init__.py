"""Post-mortem rendering."""
