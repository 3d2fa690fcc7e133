"""Development tooling for Firebreak, outside the domain library.

* :mod:`firebreak_dev.local` — the local stack behind ``make up`` (``python -m firebreak_dev up``);
* :mod:`firebreak_dev.cluster` — PostgreSQL and Airflow as separate components, the
  production-shape harness of the integration tests;
* :mod:`firebreak_dev.services` — child processes on loopback and Airflow's REST API;
* :mod:`firebreak_dev.cases` — generated triage cases for the accuracy test and ``benchmarks/bench_triage.py``.

It builds on :mod:`firebreak`; the library never imports it.
"""
