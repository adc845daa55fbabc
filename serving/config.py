"""One settings object for the service and the jobs, read from the environment and `.env` (prefix PAYRANK_)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CHANNEL_COSTS = {"none": 0.0, "call": 4.00, "sms": 0.05, "email": 0.02, "letter": 0.75, "portal": 0.01}


class Settings(BaseSettings):
    """Embedded defaults: everything lives under `.payrank/` unless told otherwise."""

    model_config = SettingsConfigDict(env_prefix="PAYRANK_", env_file=".env", extra="ignore")

    home: Path = Path(".payrank")
    tracking_uri: str | None = None  # default: sqlite under `home`; MLFLOW_TRACKING_URI also honoured
    experiment: str = "payrank"
    model_name: str = "payrank"
    # dollars per contact; PAYRANK_CHANNEL_COSTS='{"call": 5.5}' overrides some, the rest keep their defaults
    channel_costs: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_CHANNEL_COSTS))
    # the operational store (docs/workspace-store.md): default sqlite:///<home>/workspace.db
    db_url: str | None = None
    exploration_share: float = Field(0.05, ge=0.0, le=0.5, description="share of non-call decisions drawn at random")
    exploration_call_band: float = Field(
        0.1, ge=0.0, le=0.5, description="calls around the capacity cut drawn at random, as a share of capacity"
    )
    token_hours: float = Field(12.0, gt=0, le=24 * 30, description="how long a specialist's login lasts")
    engine: Literal["pandas", "spark"] = Field(
        "pandas", description="pandas (one machine) or spark (docs/scale-out.md)"
    )
    spark_master: str = Field("local[2]", description="Spark master URL for --engine spark")
    spark_partitions: int = Field(8, ge=1, description="guarantor groups (shuffle partitions) per Spark stage")
    work_clock_start: datetime | None = Field(
        None, description="demos only: the work API's clock starts at this instant (naive = UTC) and runs from there"
    )

    @field_validator("channel_costs")
    @classmethod
    def _costs(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(DEFAULT_CHANNEL_COSTS))
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}; known: {sorted(DEFAULT_CHANNEL_COSTS)}")
        negative = {k: c for k, c in v.items() if c < 0}
        if negative:
            raise ValueError(f"costs must be >= 0, got {negative}")
        return {**DEFAULT_CHANNEL_COSTS, **v}

    @property
    def demo_book(self) -> Path:
        return self.home / "demo-book"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own Settings objects)."""
    return Settings()
