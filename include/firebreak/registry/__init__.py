"""The model registry (MLflow) and the append-only alias ledger."""
