"""The specialist's workspace in the browser, under /app (docs/workspace.md): server-rendered pages over the
operational store, with their own cookie sign-in (not the service's X-API-Key)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles


def register(app: FastAPI) -> None:
    """Mount /app (pages and /app/static) on the app."""
    from serving.web import routes, routes_admin  # noqa: F401 (routes_admin adds its pages to the router)
    from serving.web.state import WebSettings, WebState

    app.state.web = WebState(WebSettings(), Path(app.state.settings.home))
    app.include_router(routes.router)
    app.mount("/app/static", StaticFiles(directory=Path(__file__).with_name("static")), name="app-static")

    async def sign_in(request: Request, exc: routes.SignInNeeded) -> RedirectResponse:
        return RedirectResponse("/app/login", status_code=303)

    app.add_exception_handler(routes.SignInNeeded, sign_in)  # type: ignore[arg-type]
