"""The code MLflow runs to load one of Firebreak's own models (models from code; see ``own_models``)."""

from mlflow.models import set_model

from firebreak.registry.own_models import Stored

set_model(Stored())
