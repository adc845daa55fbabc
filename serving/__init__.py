"""Serving: contact policy, scoring, worklist, the FastAPI app and the `payrank` command line."""
