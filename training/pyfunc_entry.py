"""MLflow "models from code" entry point: the bundle's Python model is defined here, not pickled."""

import mlflow

from training.pyfunc_model import PayrankModel

mlflow.models.set_model(PayrankModel())
