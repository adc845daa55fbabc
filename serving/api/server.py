"""Running the app under uvicorn (one worker), as `payrank serve` does.

Configuration is checked before logging is set up (a missing key or policy file: a plain message and exit 2);
the model is loaded before the port is bound, so a model that cannot be served is one JSON log line saying why
and a non-zero exit, never a traceback or a process killed by LightGBM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from serving.api.settings import ApiSettings


class ServeError(ValueError):
    """A configuration problem reported to the user in one line per problem (values are never echoed)."""


class StartFailed(RuntimeError):
    """The model could not be loaded at start; the reason is already logged (one JSON line)."""


def build_settings(**overrides: Any) -> ApiSettings:
    """Settings from the environment/.env with the command line's non-None options on top."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        base = ApiSettings()
        return base.model_copy(update=given) if given else base
    except ValidationError as exc:  # the input may hold a key: report where and what, never the value
        lines = [
            f"PAYRANK_{'_'.join(map(str, e['loc'])).upper()}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise ServeError("invalid settings:\n  " + "\n  ".join(lines)) from None


def serve(
    host: str | None = None,
    port: int | None = None,
    model: str | None = None,
    tracking_uri: str | None = None,
    policy: Path | None = None,
) -> None:
    """Build the app (refusing to start without an API key or with an unreadable policy), load the model, and run
    until interrupted; raises StartFailed (already logged) when the model cannot be loaded."""
    import logging

    import uvicorn

    from serving.api.app import create_app
    from serving.api.logging import configure_logging
    from serving.api.model_holder import load_served, one_line
    from serving.api.security import key_digests
    from serving.policy_config import PolicyConfigError, load_policy

    settings = build_settings(host=host, port=port, model_uri=model, tracking_uri=tracking_uri, policy=policy)
    key_digests(settings)  # refuse before touching the process's logging
    try:
        load_policy(settings.policy)
    except PolicyConfigError as exc:
        raise ServeError(f"PAYRANK_POLICY / --policy: {exc}") from None
    configure_logging(settings.log_level)
    try:
        served = load_served(settings)
    except Exception as exc:
        logging.getLogger("payrank.api").error("cannot start: %s", one_line(exc))
        raise StartFailed(one_line(exc)) from None
    app = create_app(settings, served)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        workers=1,
        log_config=None,
        log_level=settings.log_level,
        access_log=False,  # our own access line has the request id and no query string
        server_header=False,
    )
