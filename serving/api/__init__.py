"""The HTTP API behind `payrank serve`: FastAPI app factory, routes, auth, metrics and structured logs."""

from serving.api.app import create_app

__all__ = ["create_app"]
