"""Workspace page-load benchmark: `/app/calls` for a specialist with 200 items, served by uvicorn (a benchmark,
not a test; the goal is under 300 ms on this machine).

    python -m benchmarks.workspace [--items 200] [--requests 40] [--results-dir DIR]

The same seeded workspace as the browser tests (tests/web_helpers.py: a small generated book, a SQLite store,
the app under uvicorn in a thread, the clock at noon of the day), with ana's list grown to `--items` items. A
signed-in httpx client loads each page `--requests` times after 3 warm-up loads; reported are the median, p95 and
max wall time per page (client to last byte), and the page's size.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import RESULTS_DIR, log, machine_info, write_results

GOAL_MS = 300.0
ANA_SEEDED = 7  # ana's items on the seeded day before `extra`


def _sign_in(client: httpx.Client) -> None:
    from tests.store_helpers import PASSWORD

    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/app/login").text).group(1)  # type: ignore[union-attr]
    answer = client.post("/app/login", data={"username": "ana", "password": PASSWORD, "csrf": token})
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in failed: {answer.status_code}")


def _time(client: httpx.Client, path: str, n: int) -> dict[str, Any]:
    for _ in range(3):
        client.get(path)
    times, size = [], 0
    for _ in range(n):
        start = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        answer.raise_for_status()
        size = len(answer.content)
    times.sort()
    return {"median_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
            "max_ms": round(times[-1], 1), "bytes": size, "requests": n}  # fmt: skip


def run(items: int, requests: int) -> dict[str, Any]:
    from tests.web_helpers import Server, workspace

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        store, ids, book_dir = workspace(tmp, extra=max(items - ANA_SEEDED, 0))
        server = Server(f"sqlite:///{tmp / 'workspace.db'}", tmp, book_dir)
        with server as url, httpx.Client(base_url=url, follow_redirects=False, timeout=30) as client:
            _sign_in(client)
            listed = client.get("/app/calls").text.count('<li class="call')
            pages = {
                "/app/calls": _time(client, "/app/calls", requests),
                "/app/calls/live": _time(client, "/app/calls/live", requests),
                "/app/items/{id}": _time(client, f"/app/items/{ids.ana[1]}", requests),
            }
        store.dispose()
    return {"items_listed": listed, "pages": pages}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    result = run(args.items, args.requests)
    calls = result["pages"]["/app/calls"]
    result |= {"goal_ms": GOAL_MS, "met": calls["median_ms"] < GOAL_MS, "machine": machine_info()}
    out = write_results(args.results_dir, "workspace", result)
    for path, r in result["pages"].items():
        log(f"{path}: median {r['median_ms']} ms, p95 {r['p95_ms']} ms, max {r['max_ms']} ms, {r['bytes']:,} bytes")
    log(f"{result['items_listed']} items listed; goal {GOAL_MS:.0f} ms: {'met' if result['met'] else 'NOT met'}; {out}")


if __name__ == "__main__":
    main()
