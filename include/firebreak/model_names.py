"""Model names: every name MLflow's registry accepts, and the safe stem Firebreak files it under.

A model's name is the key of its policy file, its prediction-log partitions, its incident
ids and its metric labels. Teams name models as MLflow lets them (``FraudDetector``,
Unity-Catalog style ``catalog.schema.model``), so Firebreak accepts those names and keeps
what touches a file system or a URL safe with a *stem*: the name itself when it is made
of letters, digits, ``.``, ``_`` and ``-`` only, otherwise a readable part plus a short
hash of the full name, so two names never share a stem.

Vocabulary shared by every layer (like ``incidents.identity``): no I/O, no imports of the
library's layers.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator

# The state DB keys rows by model in String(100) columns (PostgreSQL enforces the length).
MAX_MODEL_NAME_LENGTH = 100
# What MLflow refuses in a registered model's name (mlflow.utils.validation._validate_model_name).
_MLFLOW_FORBIDDEN = ("/", ":")
_PLAIN_STEM = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# A JSON-schema pattern for the same rule, for the DAG's trigger form (Airflow Params): no
# path separators, no ':' (MLflow), no control characters, no '..', 1 to 100 characters.
PARAM_PATTERN = r"^(?!.*\.\.)(?!\s)[^/\\:\x00-\x1f\x7f]{1,100}$"


class ModelNameError(ValueError):
    """A model name MLflow or Firebreak cannot use (path separator, '..', control character, too long)."""


def check_model_name(name: str) -> str:
    """Return ``name`` when it is a usable model name; raise naming the problem otherwise.

    Accepted: what MLflow's registry accepts (no ``/`` or ``:``, not a path that normalises
    to another name), without control characters or ``\\``, no ``..`` anywhere, no leading
    or trailing whitespace, at most :data:`MAX_MODEL_NAME_LENGTH` characters.

    Raises:
        ModelNameError: The name is empty, too long, or holds a forbidden character or sequence.
    """
    if not isinstance(name, str) or not name.strip():
        raise ModelNameError(f"{name!r} is not a valid model name: it must be a non-empty string")
    problem = _problem(name)
    if problem:
        shown = repr(name) if len(name) <= MAX_MODEL_NAME_LENGTH else repr(name[:40] + "...")
        raise ModelNameError(f"{shown} is not a valid model name: {problem}")
    return name


def _problem(name: str) -> str | None:
    if len(name) > MAX_MODEL_NAME_LENGTH:
        return f"{len(name)} characters long, at most {MAX_MODEL_NAME_LENGTH} are allowed"
    if name != name.strip():
        return "it starts or ends with whitespace"
    if any(unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} for c in name):
        return "it holds a control character"
    for forbidden in (*_MLFLOW_FORBIDDEN, "\\"):
        if forbidden in name:
            return f"it holds {forbidden!r}, which MLflow or a file path cannot carry"
    if ".." in name or name == ".":
        return "it holds '..' (a path traversal)"
    return None


def model_stem(name: str) -> str:
    """The file and partition stem of a model: the policy file ``<stem>.yaml``, ``model=<stem>`` folders.

    Deterministic. Plain names (letters, digits, ``.``, ``_``, ``-``; not starting with ``.``
    or ``-``) are their own stem; any other name becomes its safe characters plus the first
    10 hex digits of its SHA-256, so ``Fraud Detector`` and ``Fraud_Detector`` never collide.

    Raises:
        ModelNameError: ``name`` is not a usable model name (:func:`check_model_name`).
    """
    check_model_name(name)
    if _PLAIN_STEM.match(name):
        return name
    readable = _UNSAFE.sub("_", name).strip("._-")[:48] or "model"
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{readable}-{digest}"


# A model name field of a pydantic model (the policy, an incident request): checked by
# :func:`check_model_name`, whose ModelNameError (a ValueError) pydantic reports with the field.
ModelName = Annotated[str, AfterValidator(check_model_name)]
