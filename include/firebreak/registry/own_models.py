"""Firebreak's own models, logged as MLflow *models from code*: loading one unpickles nothing.

Logged as an object, a pyfunc ``PythonModel`` is cloudpickled, and loading it runs whatever
the pickle says. Firebreak's own models (the pricing, lending and support-bot scenarios)
are instead logged from one code file shipped with Firebreak (:mod:`firebreak.registry.model_code`),
with their state as data beside it:

* ``state.json``: plain values (a recipe name, coverage bounds, thresholds, a knowledge base);
* one skops file per scikit-learn part, loaded back trusting only scikit-learn, NumPy and
  SciPy types plus the functions the model's class names in its ``TRUSTED`` (the artifact
  cannot widen that list: it comes from the installed code, not from the registry);
* ``model_config``: which of :data:`OWN_MODELS` to rebuild, and the model's parameters.

A model class takes part by defining ``state() -> (parts, data)`` and
``restore(parts, data)``. Loading still runs the logged code file; Firebreak checks every
artifact, that file included, against the digest in the ledger before loading
(:mod:`firebreak.registry.verification`).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from firebreak.errors import RegistryError
from firebreak.registry.flavors import foreign_types, skops_io

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

MODEL_CODE = Path(__file__).with_name("model_code.py")
KIND_KEY = "firebreak_model"  # model_config: which own model to rebuild
STATE = "state"  # the artifact holding the plain values
# The only classes a logged model may name: anything else is refused on load.
OWN_MODELS = {
    "pricing": "firebreak.scenarios.pricing:PricingModel",
    "lending": "firebreak.scenarios.lending:LoanModel",
    "support_bot": "firebreak.scenarios.support_bot:SupportResponder",
}


def kind_of(model: Any) -> str | None:
    """Which own model ``model`` is, or None for anything else."""
    name = f"{type(model).__module__}:{type(model).__qualname__}"
    return next((kind for kind, path in OWN_MODELS.items() if path == name), None)


def _class(kind: object) -> Any:
    if not isinstance(kind, str) or kind not in OWN_MODELS:
        raise RegistryError(f"not one of Firebreak's own models: {str(kind)[:80]!r}")
    module, name = OWN_MODELS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def save(model: Any, folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Write ``model``'s state under ``folder``; returns the artifacts and the model_config to log with it.

    Raises:
        RegistryError: ``model`` is not one of Firebreak's own, or a part holds a type it does not trust.
    """
    sio = skops_io()
    kind = kind_of(model)
    if kind is None:
        raise RegistryError(f"{type(model).__qualname__} is not one of Firebreak's own models")
    parts, data = model.state()
    artifacts = {STATE: str(folder / "state.json")}
    Path(artifacts[STATE]).write_text(json.dumps(data, sort_keys=True))
    for name, part in parts.items():
        path = folder / f"{name}.skops"
        sio.dump(part, path)
        _trusted(type(model), sio.get_untrusted_types(file=path), name)  # refuse now, not on load
        artifacts[name] = str(path)
    return artifacts, {KIND_KEY: kind}


def _trusted(cls: Any, found: list[str], part: str) -> list[str]:
    foreign = foreign_types(found, also=tuple(getattr(cls, "TRUSTED", ())))
    if foreign:
        raise RegistryError(f"part {part!r} of a {cls.__qualname__} holds types it does not trust: {foreign}")
    return found


def restore(config: dict[str, Any], artifacts: dict[str, str]) -> Any:
    """Rebuild the own model ``config`` names from its logged ``artifacts``.

    Raises:
        RegistryError: an unknown model, or a part holding a type its class does not trust.
    """
    sio = skops_io()
    cls = _class(config.get(KIND_KEY))
    data = json.loads(Path(artifacts[STATE]).read_text())
    parts = {}
    for name, path in artifacts.items():
        if name != STATE:
            trusted = _trusted(cls, sio.get_untrusted_types(file=path), name)
            parts[name] = sio.load(path, trusted=trusted)
    return cls.restore(parts, data)


class Stored(PythonModel):  # type: ignore[misc]
    """What MLflow loads: rebuilds the own model from the artifacts, then answers as it does."""

    def __init__(self) -> None:
        self.model: Any = None

    def load_context(self, context: Any) -> None:
        self.model = restore(dict(context.model_config or {}), dict(context.artifacts or {}))
        if hasattr(self.model, "load_context"):
            self.model.load_context(context)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        return self.model.predict(context, model_input, params)


def python_model(pyfunc: PyFuncModel) -> Any:
    """The model object under a pyfunc: an own model rebuilt from data, or another ``PythonModel``.

    Raises:
        MlflowException: the version's flavor holds no ``PythonModel`` (scikit-learn, say).
    """
    raw = pyfunc.unwrap_python_model()
    return raw.model if isinstance(raw, Stored) else raw
