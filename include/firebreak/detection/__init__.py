"""Detection of model input problems such as data drift."""
