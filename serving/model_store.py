"""Loading a registered bundle: by alias (default `models:/payrank@champion`), a version, or any MLflow URI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from training.scorer import Scorer


@dataclass
class LoadedModel:
    """A bundle ready to score, with where it came from."""

    scorer: Scorer
    uri: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """What goes into the `model_version` column: 'payrank/3' or the URI."""
        return f"{self.name}/{self.version}" if self.name and self.version else self.uri

    def describe(self) -> dict[str, Any]:
        meta = self.scorer.meta
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "uri": self.uri,
            "run_id": self.run_id,
            "as_of": meta.get("as_of"),
            "data_window": meta.get("data_window"),
            "metrics": {k: float(v) for k, v in meta.get("headline", {}).items()},
        }


def default_uri(model_name: str) -> str:
    return f"models:/{model_name}@champion"


def load_model(uri: str) -> LoadedModel:
    """Load with stock mlflow.pyfunc and unwrap the Scorer; raises ValueError with a readable message."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name = version = alias = run_id = None
    try:
        if uri.startswith("models:/"):
            ref = uri.removeprefix("models:/")
            client = MlflowClient()
            if "@" in ref:
                name, alias = ref.split("@", 1)
                mv = client.get_model_version_by_alias(name, alias)
            else:
                name, version = ref.split("/", 1)
                mv = client.get_model_version(name, version)
            version, run_id = str(mv.version), mv.run_id
        wrapper = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    except MlflowException as exc:
        raise ValueError(f"cannot load model {uri!r}: {exc.message.splitlines()[0]}") from None
    except OSError as exc:
        raise ValueError(f"cannot load model {uri!r}: {exc}") from None
    scorer = getattr(wrapper, "scorer", None)
    if not isinstance(scorer, Scorer):
        raise ValueError(f"model {uri!r} is not a payrank bundle")
    return LoadedModel(scorer=scorer, uri=uri, name=name, version=version, alias=alias, run_id=run_id)
