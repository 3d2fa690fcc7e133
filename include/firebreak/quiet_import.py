"""Importing a third-party library without the warnings its import raises in someone else's modules.

skops, on import, looks each of SciPy's ufuncs up in every loaded module (232 names times the
3,000-odd modules of an Airflow task), and Airflow's deprecated modules warn on each lookup:
1,160 warnings in the log of every task that loaded a model, written one by one through the
task's log channel. They say nothing about the model. Great Expectations and Evidently warn on
import too. This module imports nothing itself, so the scheduler can use it while Airflow
initialises (:mod:`firebreak.task_preload`).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from types import ModuleType


def import_quietly(name: str) -> ModuleType:
    """``importlib.import_module(name)``, with every warning raised while importing it silenced (once: later calls find it loaded)."""
    if name not in sys.modules:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module(name)
    return sys.modules[name]
