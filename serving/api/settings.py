"""The API's settings: the project's one `Settings` object plus what only the server needs (prefix PAYRANK_)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from serving.config import Settings
from serving.model_store import default_uri

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
MB = 1024 * 1024


def _as_list(value: Any) -> Any:
    """A comma-separated string or a JSON list (as environment variables give them) → list of non-empty items."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError("not a valid JSON list") from None
        else:
            value = text.split(",")
    if isinstance(value, list | tuple):
        return [v.strip() if isinstance(v, str) else v for v in value if not (isinstance(v, str) and not v.strip())]
    return value


class ApiSettings(Settings):
    """Settings of `payrank serve`; every field can be set as PAYRANK_<FIELD> in the environment or `.env`."""

    model_uri: str | None = None  # default: models:/<model_name>@champion
    policy: Path | None = None  # contact-policy TOML; default: the built-in rules
    num_threads: int = Field(1, ge=0, description="LightGBM threads per request (0: all cores)")
    big_batch_rows: int = Field(
        500, ge=0, description="a batch of this many rows uses every core while no other request computes (0: never)"
    )
    max_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    api_key_hashes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    allow_no_auth: bool = False
    max_body_bytes: int = Field(20 * MB, ge=1)
    metrics_public: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("api_key_hashes", mode="before")
    @classmethod
    def _hash_list(cls, value: Any) -> Any:
        items = _as_list(value)
        if not isinstance(items, list):
            return items
        out = []
        for i, item in enumerate(items, start=1):
            digest = str(item).strip().lower()
            if not SHA256_HEX.fullmatch(digest):  # never echo the value: it may be a key pasted by mistake
                raise ValueError(f"entry {i} is not a SHA-256 hex digest (64 hex characters)")
            out.append(digest)
        return out

    @field_validator("api_keys", mode="before")
    @classmethod
    def _key_list(cls, value: Any) -> Any:
        return _as_list(value)

    @property
    def resolved_model_uri(self) -> str:
        """The model to serve: `model_uri`, else the registry alias `models:/<model_name>@champion`."""
        return self.model_uri or default_uri(self.model_name)
