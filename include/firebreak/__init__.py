"""Firebreak: the standard operating procedure for model failures, run by itself.

The library never imports Airflow; the DAGs under ``dags/`` wrap its functions.
"""

__version__ = "0.1.0"
