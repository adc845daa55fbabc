"""Registered-model aliases: every bundle becomes `challenger`; the promotion gate decides `champion`.

MLflow 3 aliases (`models:/payrank@champion`), never the deprecated stages. The gate compares challenger and
champion on the SAME holdout rows (the champion is re-scored on the challenger's holdout) and records its
reasoning as tags on the new version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class Gate:
    """Promotion thresholds: AUC may drop by at most `max_auc_drop`, policy value by at most `max_value_drop`."""

    max_auc_drop: float = 0.005
    max_value_drop: float = 0.0


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str
    champion_version: str | None


def champion_version(client: MlflowClient, name: str) -> Any | None:
    """The model version behind @champion, or None."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def decide(new: dict[str, float], old: dict[str, float] | None, gate: Gate) -> tuple[bool, str]:
    """The gate itself, a pure function of the two models' metrics on the same holdout."""
    if old is None:
        return True, "no champion yet"
    auc_new, auc_old = new["auc"], old["auc"]
    val_new, val_old = new["policy_value"], old["policy_value"]
    if auc_new != auc_new:  # NaN: no evidence the new model ranks at all
        return False, "the new model's holdout AUC is undefined"
    if auc_new < auc_old - gate.max_auc_drop:
        return False, f"AUC {auc_new:.4f} is more than {gate.max_auc_drop} below the champion's {auc_old:.4f}"
    if val_new == val_new and val_old == val_old and val_new < val_old - gate.max_value_drop:
        return False, f"policy value {val_new:.4f} is below the champion's {val_old:.4f}"
    return True, f"AUC {auc_new:.4f} vs {auc_old:.4f}, policy value {val_new:.4f} vs {val_old:.4f}"


def register_and_gate(
    client: MlflowClient,
    name: str,
    model_uri: str,
    run_id: str,
    new_metrics: dict[str, float],
    score_champion: Callable[[str], dict[str, float] | None],
    gate: Gate,
    tags: dict[str, str] | None = None,
) -> tuple[str, Decision]:
    """Register `model_uri` as a new version, alias it challenger, promote it when the gate passes."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="payrank bundle: payment likelihood + channel response")
    version = str(client.create_model_version(name, model_uri, run_id=run_id, tags=tags or {}).version)
    for key in ("auc", "policy_value"):
        client.set_model_version_tag(name, version, f"holdout_{key}", f"{new_metrics[key]:.6f}")
    client.set_registered_model_alias(name, CHALLENGER, version)
    current = champion_version(client, name)
    old = score_champion(f"models:/{name}@{CHAMPION}") if current is not None else None
    ok, reason = decide(new_metrics, old, gate)
    if current is not None and old is None:
        reason = "the champion could not be re-scored on this holdout"
    client.set_model_version_tag(name, version, "gate", ("promoted: " if ok else "kept champion: ") + reason)
    if ok:
        client.set_registered_model_alias(name, CHAMPION, version)
    return version, Decision(ok, reason, None if current is None else str(current.version))


def promote(client: MlflowClient, name: str, version: str, reason: str) -> None:
    """Promote a version by hand; the reason and the time are recorded as tags."""
    client.get_model_version(name, version)  # raises a clear MlflowException when it does not exist
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "promoted_by_hand", reason)
    client.set_model_version_tag(name, version, "promoted_at", datetime.now(UTC).isoformat(timespec="seconds"))


def list_versions(client: MlflowClient, name: str) -> list[dict[str, Any]]:
    """Versions newest first, with aliases, holdout metrics and data window."""
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return []
    aliases: dict[str, list[str]] = {}
    for alias, ver in (model.aliases or {}).items():
        aliases.setdefault(str(ver), []).append(alias)
    rows = []
    for mv in client.search_model_versions(f"name = '{name}'"):
        t = mv.tags or {}
        rows.append(
            {
                "version": str(mv.version),
                "aliases": ",".join(sorted(aliases.get(str(mv.version), []))),
                "auc": t.get("holdout_auc", ""),
                "policy_value": t.get("holdout_policy_value", ""),
                "data_window": t.get("data_window", ""),
                "run_id": mv.run_id,
                "gate": t.get("gate", ""),
            }
        )
    return sorted(rows, key=lambda r: int(r["version"]), reverse=True)
