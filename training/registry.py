"""Registered-model aliases: every bundle becomes `challenger`; the promotion gate decides `champion`.

MLflow 3 aliases (`models:/payrank@champion`), never the deprecated stages. The gate compares challenger and
champion on the SAME holdout rows (the champion is re-scored on the challenger's holdout), reads the policy
evidence (a challenger whose channel policy is not estimated to beat the logged policy does not replace a
champion) and records its reasoning as tags on the new version.

Promotion is compare-and-set: another training may promote its own model while this one compares. So, under the
store's lock, the gate reads the champion again right before moving the alias; if it is no longer the version
it compared against, it compares again with the new one (at most MAX_GATE_ROUNDS times, then it keeps the
champion). A champion is therefore only ever replaced by a model that beat *it*.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

CHAMPION, CHALLENGER = "champion", "challenger"
METRIC_TAGS = ("auc", "policy_value", "policy_lo", "policy_hi", "logged_value")
MAX_GATE_ROUNDS = 3
Lock = Callable[[], AbstractContextManager[Any]]


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


def beats_logged_policy(new: dict[str, float]) -> tuple[bool, str]:
    """Is the learned channel policy estimated to beat the logged one (DR lower bound above the logged value)?"""
    lo, logged = new.get("policy_lo", float("nan")), new.get("logged_value", float("nan"))
    if lo == lo and logged == logged and lo > logged:
        return True, f"its channel policy's DR lower bound {lo:.4f} is above the logged policy's {logged:.4f}"
    return False, (
        f"its channel policy is not estimated to beat the logged policy "
        f"(DR lower bound {lo:.4f} vs logged {logged:.4f} per account-day)"
    )


def decide(new: dict[str, float], old: dict[str, float] | None, gate: Gate) -> tuple[bool, str]:
    """The gate itself, a pure function of the two models' metrics on the same holdout.

    With no champion the challenger is promoted, with a warning when its policy does not beat the logged one.
    A challenger whose policy is not estimated to beat the logged policy never replaces a champion.
    """
    beats, evidence = beats_logged_policy(new)
    if old is None:
        return True, "no champion yet" + ("" if beats else f"; warning: {evidence}")
    auc_new, auc_old = new["auc"], old["auc"]
    val_new, val_old = new["policy_value"], old["policy_value"]
    if auc_new != auc_new:  # NaN: no evidence the new model ranks at all
        return False, "the new model's holdout AUC is undefined"
    if auc_new < auc_old - gate.max_auc_drop:
        return False, f"AUC {auc_new:.4f} is more than {gate.max_auc_drop} below the champion's {auc_old:.4f}"
    if not beats:
        return False, evidence
    if val_new == val_new and val_old == val_old and val_new < val_old - gate.max_value_drop:
        return False, f"policy value {val_new:.4f} is below the champion's {val_old:.4f}"
    return True, f"AUC {auc_new:.4f} vs {auc_old:.4f}, policy value {val_new:.4f} vs {val_old:.4f}; {evidence}"


def _store_lock() -> AbstractContextManager[Any]:
    """The lock every payrank process takes on this registry before moving the champion alias."""
    import mlflow

    from training.tracking import store_lock

    return store_lock(mlflow.get_registry_uri())


def _version_of(mv: Any | None) -> str | None:
    return None if mv is None else str(mv.version)


def register_and_gate(
    client: MlflowClient,
    name: str,
    model_uri: str,
    run_id: str,
    new_metrics: dict[str, float],
    score_champion: Callable[[str], dict[str, float] | None],
    gate: Gate,
    tags: dict[str, str] | None = None,
    lock: Lock = _store_lock,
) -> tuple[str, Decision]:
    """Register `model_uri` as a new version, alias it challenger, promote it when the gate passes.

    `score_champion(uri)` re-scores a champion on the challenger's holdout; it gets the champion's exact
    version (`models:/name/N`), so what it scores is what the compare-and-set checks.
    """
    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description="payrank bundle: payment likelihood + channel response")
        except MlflowException:  # another training registered the name meanwhile
            client.get_registered_model(name)
    version = str(client.create_model_version(name, model_uri, run_id=run_id, tags=tags or {}).version)
    for key in METRIC_TAGS:
        if key in new_metrics:
            client.set_model_version_tag(name, version, f"holdout_{key}", f"{new_metrics[key]:.6f}")
    client.set_registered_model_alias(name, CHALLENGER, version)
    current = champion_version(client, name)
    for _ in range(MAX_GATE_ROUNDS):
        compared = _version_of(current)
        old = score_champion(f"models:/{name}/{compared}") if compared is not None else None
        ok, reason = decide(new_metrics, old, gate)
        if compared is not None and old is None:
            reason = "the champion could not be re-scored on this holdout"
        with lock():
            current = champion_version(client, name)
            if _version_of(current) != compared:
                continue  # promoted by someone else while we compared: compare with that one instead
            warned = ok and "warning" in reason
            verdict = "promoted with a warning: " if warned else ("promoted: " if ok else "kept champion: ")
            client.set_model_version_tag(name, version, "gate", verdict + reason)
            if ok:
                client.set_registered_model_alias(name, CHAMPION, version)
            return version, Decision(ok, reason, compared)
    reason = f"the champion changed during each of {MAX_GATE_ROUNDS} comparisons; promote by hand if wanted"
    client.set_model_version_tag(name, version, "gate", "kept champion: " + reason)
    return version, Decision(False, reason, _version_of(current))


def promote(client: MlflowClient, name: str, version: str, reason: str, lock: Lock = _store_lock) -> None:
    """Promote a version by hand (under the store's lock, like the gate); the reason and time become tags."""
    client.get_model_version(name, version)  # raises a clear MlflowException when it does not exist
    with lock():
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
                "policy_interval": _interval(t.get("holdout_policy_lo"), t.get("holdout_policy_hi")),
                "logged_value": t.get("holdout_logged_value", ""),
                "data_window": t.get("data_window", ""),
                "run_id": mv.run_id,
                "gate": t.get("gate", ""),
            }
        )
    return sorted(rows, key=lambda r: int(r["version"]), reverse=True)


def _interval(lo: str | None, hi: str | None) -> str:
    """'[lo, hi]' from two tags, rounded for reading ('' when a version predates them)."""
    if lo is None or hi is None:
        return ""
    return f"[{float(lo):.2f}, {float(hi):.2f}]"
