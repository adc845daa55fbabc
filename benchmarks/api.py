"""API benchmark: `payrank serve` against `mlflow models serve`, same model, same bodies, closed-loop load.

    python -m benchmarks.api [--quick] [--requests N] [--concurrency 1,4] [--repeats 3] [--results-dir DIR]
                             [--guarantors 10000] [--mlflow-threads 1] [--profile DIR]

A book is generated (10k guarantors; 2k under --quick), a bundle is trained once (num_threads=1) and
registered as `payrank@champion` in a SQLite MLflow store under a temporary directory. Then both servers run
**at the same time**, each a subprocess in its own process group on a free 127.0.0.1 port, one uvicorn worker
each: (a) `payrank serve` (PAYRANK_API_KEYS set, PAYRANK_NUM_THREADS=1) and (b) `mlflow models serve -m
models:/payrank@champion --env-manager local -w 1` (OMP_NUM_THREADS=1 by default, so LightGBM uses one thread
in both; `--mlflow-threads 0` leaves MLflow's LightGBM on every core). The servers are measured one after the
other, never both at once, in alternating order per repeat (so drifting background load hits both alike).

Cases, with the very same request bytes for both servers: `POST /invocations` with 1, 100 and 1,000 feature
rows (`dataframe_split` JSON of `example_as_strings(scorer, build_features(book, as_of))` rows), and `POST
/v1/worklist` on a fragment of whole guarantors holding 1,000 accounts (payrank only; MLflow has no peer).
Load: an asyncio httpx client with C concurrent workers, each sending its next request when the previous one
has answered, a fixed count of requests per case (warm-up requests before it are not counted). Per case and
repeat: p50/p95/p99 latency, req/s and rows/s; reported are the medians over the repeats and the ratio payrank
p99 / MLflow p99 (median of the per-repeat ratios, each measured in the same repeat); payrank's access log adds
its in-app latency (middleware in to last byte out), so the rest is HTTP, event loop and client. Both servers must
predict the same numbers for the same body, or the run fails. `--profile DIR` afterwards samples the payrank
server with py-spy (collapsed stacks + flame graph per case) and prints the hot spots.

Writes `<results-dir>/api.json` and `<results-dir>/api_latency.png`; the servers are stopped in any case.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.common import BOOK_END, BOOK_SEED, RESULTS_DIR, log, machine_info, write_results

FULL_GUARANTORS = 10_000
QUICK_GUARANTORS = 2_000
ROW_SIZES = (1, 100, 1_000)
FULL_REQUESTS = {1: 300, 100: 200, 1_000: 100, "worklist": 100}
QUICK_REQUESTS = {1: 12, 100: 8, 1_000: 5, "worklist": 4}
WORKLIST_ACCOUNTS = 1_000
WORKLIST_CALLS = 100
MODEL_NAME = "payrank"
GOALS = {"max_p99_ratio": 1.0, "single_row_p99_ms": 10.0, "thousand_row_p99_ms": 100.0, "workers": 1}
START_TIMEOUT_S = 180
BIN = Path(sys.executable).parent
PAYRANK, MLFLOW = "payrank", "mlflow"
STAT_KEYS = ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms", "req_per_s", "rows_per_s", "wall_s")
STAT_KEYS += ("server_p50_ms", "server_p99_ms")  # payrank only: latency_ms of its access log
OWN_CODE = ("(serving/", "(training/", "(features/", "(mlflow/", "(lightgbm/", "(json/", "(starlette/", "(fastapi/")
IDLE_FRAMES = ("Condition.wait ", "EpollSelector.select ", "Event.wait ", "Thread.join ", "Queue.get ")


# ---------------------------------------------------------------- model and request bodies


@dataclass
class Case:
    """One kind of request: endpoint, rows (feature rows, or book accounts for the worklist), body, servers."""

    name: str
    path: str
    rows: int
    body: bytes
    servers: tuple[str, ...]
    requests: int
    meta: dict[str, Any] = field(default_factory=dict)


def prepare(guarantors: int, tracking_uri: str, requests: dict[Any, int]) -> tuple[dict[str, Any], list[Case]]:
    """Generate the book, train and register the champion in `tracking_uri`; the model facts and the bodies."""
    from mlflow.utils.proto_json_utils import dump_input_data

    from features.build import build_features
    from features.generate import generate_book
    from serving.api.books import book_records
    from training.pyfunc_model import example_as_strings
    from training.train import TrainConfig, log_and_register, train_bundle

    t0 = time.perf_counter()
    book, _ = generate_book(guarantors, seed=BOOK_SEED, end_date=BOOK_END)
    generate_s = time.perf_counter() - t0
    cfg = TrainConfig(as_of=BOOK_END, tracking_uri=tracking_uri, model_name=MODEL_NAME, num_threads=1)
    t0 = time.perf_counter()
    trained = train_bundle(book, cfg)
    train_s = time.perf_counter() - t0
    result = log_and_register(trained, cfg)
    if not result.promoted:
        raise RuntimeError(f"the model was not promoted to champion: {result.reason}")
    scorer = trained.scorer

    features = build_features(book, BOOK_END)
    rows = example_as_strings(scorer, features).sample(frac=1.0, random_state=BOOK_SEED)
    tiled = len(rows) < max(ROW_SIZES)  # a tiny book may hold fewer open accounts than the largest request
    if tiled:
        rows = rows.iloc[np.resize(np.arange(len(rows)), max(ROW_SIZES))]
    rows = rows.reset_index(drop=True)
    both = (PAYRANK, MLFLOW)
    bodies = {n: dump_input_data(rows.head(n)).encode() for n in ROW_SIZES}
    cases = [Case(f"invocations_{n}", "/invocations", n, bodies[n], both, requests[n]) for n in ROW_SIZES]

    counts = book.accounts.groupby("guarantor_id").size()
    counts = counts.loc[book.guarantors["guarantor_id"]].sample(frac=1.0, random_state=BOOK_SEED)
    chosen, total = [], 0
    for gid, n in counts.items():
        if total + n <= WORKLIST_ACCOUNTS:
            chosen.append(gid)
            total += int(n)
        if total == WORKLIST_ACCOUNTS:
            break
    fragment = book.subset_guarantors(chosen)
    open_accounts = int(build_features(fragment, BOOK_END).shape[0])
    body = {"as_of": BOOK_END.isoformat(), "calls": WORKLIST_CALLS, "book": book_records(fragment)}
    meta = {"guarantors": len(chosen), "accounts": total, "open_accounts": open_accounts, "calls": WORKLIST_CALLS}
    worklist_body = json.dumps(body).encode()
    cases.append(Case("worklist_1000", "/v1/worklist", total, worklist_body, (PAYRANK,), requests["worklist"], meta))

    model = {
        "name": MODEL_NAME,
        "version": result.version,
        "uri": f"models:/{MODEL_NAME}@champion",
        "book_guarantors": guarantors,
        "book_accounts": len(book.accounts),
        "open_accounts": len(features),
        "rows_tiled": tiled,
        "holdout_auc": result.metrics.get("holdout_auc"),
        "generate_s": generate_s,
        "train_s": train_s,
        "train_num_threads": 1,
    }
    return model, cases


# ---------------------------------------------------------------- servers


@dataclass
class Server:
    """A server subprocess (leader of its own process group) and how to talk to it."""

    name: str
    url: str
    proc: subprocess.Popen
    log_path: Path
    headers: dict[str, str]

    def pids(self) -> list[int]:
        """Every live (not zombie) process of the server's group (`mlflow models serve` runs uvicorn as a child)."""
        out = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.proc.pid and fields[0] != "Z":  # pgrp; state
                out.append(int(stat.parent.name))
        return sorted(out)

    def worker_pid(self) -> int:
        """The process that serves requests: the leader's child if any (uvicorn under `mlflow models serve`)."""
        others = [p for p in self.pids() if p != self.proc.pid]
        return others[-1] if others else self.proc.pid

    def rss_mib(self) -> float:
        """Summed RSS of the server's processes."""
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(tmp: Path) -> dict[str, str]:
    """Our environment without PAYRANK_/MLFLOW_ settings (a developer's must not leak in), the venv on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYRANK_", "MLFLOW_"))}
    env.update(
        PATH=os.pathsep.join([str(BIN), env.get("PATH", "")]),
        GIT_PYTHON_REFRESH="quiet",
        MLFLOW_ENABLE_ASYNC_LOGGING="false",
        PAYRANK_HOME=str(tmp / "home"),
    )
    return env


def _spawn(name: str, cmd: list[str], env: dict[str, str], tmp: Path, port: int, headers: dict[str, str]) -> Server:
    log_path = tmp / f"{name}.log"
    with log_path.open("wb") as fh:  # a file, not a pipe: a full pipe would stall the server
        proc = subprocess.Popen(cmd, env=env, cwd=tmp, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(name, f"http://127.0.0.1:{port}", proc, log_path, headers)


def start_payrank(tmp: Path, tracking_uri: str, key: str) -> Server:
    """`payrank serve` on a free loopback port: one worker (always), one LightGBM thread per request."""
    port = free_port()
    env = {**_clean_env(tmp), "PAYRANK_API_KEYS": key, "PAYRANK_NUM_THREADS": "1"}
    exe = BIN / "payrank"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "serving.cli"]
    cmd = [*base, "serve", "--host", "127.0.0.1", "--port", str(port), "--tracking-uri", tracking_uri]
    return _spawn(PAYRANK, cmd, env, tmp, port, {"X-API-Key": key})


def start_mlflow(tmp: Path, tracking_uri: str, threads: int) -> Server:
    """`mlflow models serve` of the champion on a free loopback port, one uvicorn worker, local environment."""
    port = free_port()
    env = {**_clean_env(tmp), "MLFLOW_TRACKING_URI": tracking_uri}
    if threads > 0:
        env["OMP_NUM_THREADS"] = str(threads)
    exe = BIN / "mlflow"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlflow"]
    cmd = [*base, "models", "serve", "-m", f"models:/{MODEL_NAME}@champion", "--env-manager", "local"]
    cmd += ["-p", str(port), "-h", "127.0.0.1", "-w", "1"]
    return _spawn(MLFLOW, cmd, env, tmp, port, {})


def wait_ready(server: Server, timeout: float = START_TIMEOUT_S) -> float:
    """Poll /ping until 200; seconds it took. Fails fast if the server exits."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited ({server.proc.returncode}) before /ping:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/ping", timeout=2).status_code == 200:
                return time.monotonic() - t0
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{server.name}: no answer from /ping within {timeout} s:\n{server.log_tail()}")


def stop(server: Server, grace: float = 15.0) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after `grace` seconds; never raises."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            server.proc.poll()  # reap the leader
            if server.proc.returncode is not None and not server.pids():
                return
            time.sleep(0.1)
    log(f"warning: {server.name} process group {server.proc.pid} still has {server.pids()}")


# ---------------------------------------------------------------- load


def _headers(server: Server) -> dict[str, str]:
    return {**server.headers, "Content-Type": "application/json"}


async def closed_loop(
    client: httpx.AsyncClient, server: Server, case: Case, n: int, concurrency: int, tag: str = "w"
) -> list[float]:
    """`n` requests from `concurrency` workers, each sending its next when the previous answered; seconds each.

    Each request carries `X-Request-ID: <tag>-<i>` (both servers get the same headers; payrank logs the id)."""
    latencies: list[float] = []
    sent = 0
    headers = _headers(server)

    async def worker() -> None:
        nonlocal sent
        while sent < n:
            sent += 1
            t0 = time.perf_counter()
            r = await client.post(case.path, content=case.body, headers={**headers, "X-Request-ID": f"{tag}-{sent}"})
            dt = time.perf_counter() - t0
            if r.status_code != 200:
                raise RuntimeError(f"{server.name} {case.path} answered {r.status_code}: {r.text[:500]}")
            latencies.append(dt)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def measure(client: httpx.AsyncClient, server: Server, case: Case, concurrency: int, warmup: int) -> dict:
    """Warm-up (not counted), then `case.requests` requests: latency percentiles and throughput."""
    await closed_loop(client, server, case, warmup, concurrency)
    offset = server.log_path.stat().st_size
    tag = f"m{secrets.token_hex(4)}"
    t0 = time.perf_counter()
    lat = await closed_loop(client, server, case, case.requests, concurrency, tag)
    wall = time.perf_counter() - t0
    ms = np.asarray(lat) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    inside = {}
    if server.name == PAYRANK:  # payrank's access log: time inside the app (middleware in to last byte out)
        logged = await server_latencies(server, offset, tag, len(ms))
        if len(logged) == len(ms):
            s50, s99 = np.percentile(logged, [50, 99])
            inside = {"server_p50_ms": float(s50), "server_p99_ms": float(s99)}
    return {
        **inside,
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
        "req_per_s": len(ms) / wall,
        "rows_per_s": len(ms) * case.rows / wall,
        "wall_s": wall,
        "requests": len(ms),
    }


async def server_latencies(server: Server, offset: int, tag: str, expected: int, timeout: float = 2.0) -> list[float]:
    """`latency_ms` of payrank's access lines for request ids `<tag>-*` (logged after the answer: wait a bit)."""
    deadline = time.monotonic() + timeout
    while True:
        with server.log_path.open("rb") as fh:
            fh.seek(offset)
            lines = fh.read().decode(errors="replace").splitlines()
        out = []
        for line in lines:
            if f'"{tag}-' in line and '"msg": "request"' in line:
                with contextlib.suppress(ValueError, KeyError):
                    out.append(float(json.loads(line)["latency_ms"]))
        if len(out) >= expected or time.monotonic() > deadline:
            return out
        await asyncio.sleep(0.05)


def _client(server: Server, concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=server.url, timeout=300, limits=limits)


async def run_load(
    servers: dict[str, Server], cases: list[Case], concurrencies: list[int], repeats: int, warmup: int
) -> list[dict[str, Any]]:
    """Every (concurrency, case, server) `repeats` times, servers alternating first/second per repeat."""
    runs: dict[tuple[int, str, str], list[dict]] = {}
    for c in concurrencies:
        clients = {name: _client(s, c) for name, s in servers.items()}
        try:
            for rep in range(repeats):
                for case in cases:
                    order = case.servers if rep % 2 == 0 else tuple(reversed(case.servers))
                    for name in order:
                        stats = await measure(clients[name], servers[name], case, c, max(warmup, c))
                        runs.setdefault((c, case.name, name), []).append(stats)
                        log(
                            f"  c={c} repeat {rep + 1}/{repeats} {case.name:>16} {name:>7}: "
                            f"p50 {stats['p50_ms']:7.1f} ms  p99 {stats['p99_ms']:7.1f} ms  "
                            f"{stats['req_per_s']:7.1f} req/s"
                        )
        finally:
            for cl in clients.values():
                await cl.aclose()
    by_name = {case.name: case for case in cases}
    out = []
    for (c, case_name, server), reps in runs.items():
        case = by_name[case_name]
        median = {k: statistics.median(r[k] for r in reps) for k in STAT_KEYS if all(k in r for r in reps)}
        spread = {k: [min(r[k] for r in reps), max(r[k] for r in reps)] for k in ("p50_ms", "p99_ms")}
        entry = {"concurrency": c, "case": case_name, "endpoint": case.path, "rows": case.rows, "server": server}
        out.append({**entry, "requests": case.requests, "median": median, "min_max": spread, "repeats": reps})
    return out


def compare(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """payrank p99 / MLflow p99 per concurrency and size: median of per-repeat ratios, and ratio of medians."""
    index = {(r["concurrency"], r["case"], r["server"]): r for r in results}
    out = []
    for (c, case, server), ours in index.items():
        theirs = index.get((c, case, MLFLOW))
        if server != PAYRANK or theirs is None:
            continue
        per_repeat = [a["p99_ms"] / b["p99_ms"] for a, b in zip(ours["repeats"], theirs["repeats"], strict=True)]
        p50 = [a["p50_ms"] / b["p50_ms"] for a, b in zip(ours["repeats"], theirs["repeats"], strict=True)]
        out.append(
            {
                "concurrency": c,
                "case": case,
                "rows": ours["rows"],
                "payrank_p99_ms": ours["median"]["p99_ms"],
                "mlflow_p99_ms": theirs["median"]["p99_ms"],
                "ratio_p99": statistics.median(per_repeat),
                "ratio_p99_per_repeat": per_repeat,
                "ratio_of_median_p99": ours["median"]["p99_ms"] / theirs["median"]["p99_ms"],
                "ratio_p50": statistics.median(p50),
            }
        )
    return out


# ---------------------------------------------------------------- agreement, goals, report


def check_predictions(servers: dict[str, Server], cases: list[Case]) -> list[dict[str, Any]]:
    """POST each /invocations body to both servers; the predictions must agree (else RuntimeError)."""
    from mlflow.deployments import PredictionsResponse

    out = []
    for case in cases:
        if MLFLOW not in case.servers:
            continue
        frames = {}
        for name in case.servers:
            url, headers = f"{servers[name].url}{case.path}", _headers(servers[name])
            r = httpx.post(url, content=case.body, headers=headers, timeout=300)
            if r.status_code != 200:
                raise RuntimeError(f"{name} {case.path} answered {r.status_code}: {r.text[:500]}")
            frames[name] = PredictionsResponse.from_json(r.text).get_predictions()
        ours, theirs = frames[PAYRANK], frames[MLFLOW]
        if list(ours.columns) != list(theirs.columns) or not len(ours) == len(theirs) == case.rows:
            raise RuntimeError(f"{case.name}: columns/rows differ: {list(ours.columns)} vs {list(theirs.columns)}")
        a, b = ours.to_numpy(dtype=float), theirs.to_numpy(dtype=float)
        diff = float(np.nanmax(np.abs(a - b))) if a.size else 0.0
        if not np.allclose(a, b, rtol=1e-12, atol=1e-12, equal_nan=True):
            raise RuntimeError(f"{case.name}: payrank and MLflow predictions differ (max |diff| {diff:g})")
        identical = bool(np.array_equal(a, b, equal_nan=True))
        out.append({"case": case.name, "rows": case.rows, "columns": list(ours.columns), "identical": identical})
        out[-1]["max_abs_diff"] = diff
    return out


def check_worklist(server: Server, case: Case) -> dict[str, Any]:
    """One /v1/worklist answer: its row counts (the load only checks the status)."""
    r = httpx.post(f"{server.url}{case.path}", content=case.body, headers=_headers(server), timeout=300)
    if r.status_code != 200:
        raise RuntimeError(f"{case.path} answered {r.status_code}: {r.text[:500]}")
    body = r.json()
    return {"listed": len(body["rows"]), "exclusions": len(body["exclusions"]), "response_bytes": len(r.content)}


def goals(results: list[dict[str, Any]], ratios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each goal per concurrency: the measured value, the threshold, met or not."""
    out = []
    for r in ratios:
        out.append(
            {
                "goal": f"payrank p99 <= MLflow p99 ({r['rows']} rows)",
                "concurrency": r["concurrency"],
                "measured": r["ratio_p99"],
                "threshold": GOALS["max_p99_ratio"],
                "met": r["ratio_p99"] <= GOALS["max_p99_ratio"],
            }
        )
    for rows, key in ((1, "single_row_p99_ms"), (1_000, "thousand_row_p99_ms")):
        for r in results:
            if r["server"] == PAYRANK and r["endpoint"] == "/invocations" and r["rows"] == rows:
                p99 = r["median"]["p99_ms"]
                goal = f"payrank /invocations {rows} row(s) p99 <= {GOALS[key]:g} ms"
                met = p99 <= GOALS[key]
                out.append({"goal": goal, "concurrency": r["concurrency"], "measured": p99, "threshold": GOALS[key]})
                out[-1]["met"] = met
    out.append({"goal": "one uvicorn worker per server", "concurrency": None, "measured": 1, "threshold": 1})
    out[-1]["met"] = True
    return out


def markdown(results: list[dict[str, Any]], ratios: list[dict[str, Any]]) -> str:
    """The results as a markdown table (medians over repeats)."""
    ratio = {(r["concurrency"], r["case"]): r["ratio_p99"] for r in ratios}
    head = "| C | endpoint | rows | server | p50 ms | p95 ms | p99 ms | req/s | rows/s | payrank p99 / MLflow p99 "
    head += "| in-app p50 / p99 ms |"
    lines = [head, "|" + "---|" * 11]
    for r in sorted(results, key=lambda r: (r["concurrency"], r["endpoint"] != "/invocations", r["rows"], r["server"])):
        m = r["median"]
        rows = f"{r['rows']:,}" + (" accounts" if r["endpoint"] != "/invocations" else "")
        q = ratio.get((r["concurrency"], r["case"])) if r["server"] == PAYRANK else None
        lines.append(
            f"| {r['concurrency']} | `{r['endpoint']}` | {rows} | {r['server']} | {m['p50_ms']:.1f} | "
            f"{m['p95_ms']:.1f} | {m['p99_ms']:.1f} | {m['req_per_s']:.1f} | {m['rows_per_s']:,.0f} | "
            f"{'' if q is None else f'{q:.2f}'} | {_inside(m)} |"
        )
    return "\n".join(lines)


def _inside(m: dict[str, float]) -> str:
    return f"{m['server_p50_ms']:.1f} / {m['server_p99_ms']:.1f}" if "server_p50_ms" in m else ""


def plot(results: list[dict[str, Any]], out: Path, title: str) -> Path:
    """p50 (solid) and p99 (dashed) latency by rows per request, both servers, one panel per concurrency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    concurrencies = sorted({r["concurrency"] for r in results})
    fig, axes = plt.subplots(1, len(concurrencies), figsize=(6.2 * len(concurrencies), 4.6), squeeze=False)
    colors = {PAYRANK: "tab:blue", MLFLOW: "tab:orange"}
    for ax, c in zip(axes[0], concurrencies, strict=True):
        for server in (PAYRANK, MLFLOW):
            mine = [r for r in results if r["concurrency"] == c and r["server"] == server]
            pts = sorted((r for r in mine if r["endpoint"] == "/invocations"), key=lambda r: r["rows"])
            if not pts:
                continue
            xs = [r["rows"] for r in pts]
            for key, style in (("p50_ms", "-o"), ("p99_ms", "--s")):
                ax.plot(xs, [r["median"][key] for r in pts], style, color=colors[server], label=f"{server} {key[:3]}")
        for r in results:
            if r["concurrency"] == c and r["endpoint"] == "/v1/worklist":
                ax.plot([r["rows"]], [r["median"]["p50_ms"]], "*", color="tab:green", ms=11, label="worklist p50")
                ax.plot([r["rows"]], [r["median"]["p99_ms"]], "P", color="tab:green", ms=9, label="worklist p99")
        ax.plot([1, 1_000], [GOALS["single_row_p99_ms"], GOALS["thousand_row_p99_ms"]], "x", color="red", ms=10)
        ax.plot([], [], "x", color="red", label="p99 goal")
        ax.set(xscale="log", yscale="log", xlabel="rows per request (worklist: book accounts)", ylabel="latency, ms")
        ax.set_title(f"concurrency {c} (closed loop), one worker")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# ---------------------------------------------------------------- profile


def _pyspy() -> str | None:
    exe = BIN / "py-spy"
    return str(exe) if exe.exists() else shutil.which("py-spy")


async def _load_for(server: Server, case: Case, concurrency: int, proc: subprocess.Popen) -> int:
    """Closed-loop requests until `proc` (py-spy) exits; how many were sent."""
    sent = 0
    async with _client(server, concurrency) as client:
        while proc.poll() is None:
            sent += len(await closed_loop(client, server, case, concurrency, concurrency))
    return sent


def summarise_stacks(raw: Path, top: int = 15) -> dict[str, Any]:
    """Top functions by self share and (payrank/MLflow/LightGBM/json frames) inclusive share of busy samples
    (idle waits dropped), from py-spy's collapsed stacks."""
    self_n: Counter[str] = Counter()
    incl_n: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames or frames[-1].startswith(IDLE_FRAMES):  # a thread waiting for work, not working
            continue
        total += n
        self_n[frames[-1]] += n
        for f in set(frames):
            if any(part in f for part in OWN_CODE):
                incl_n[f] += n

    def share(c: Counter[str]) -> list[dict[str, Any]]:
        return [{"frame": f, "share": n / total} for f, n in c.most_common(top)] if total else []

    return {"samples": total, "self": share(self_n), "inclusive": share(incl_n)}


def profile(server: Server, cases: list[Case], out_dir: Path, seconds: int, concurrency: int) -> dict[str, Any]:
    """py-spy on the serving process under load, per case: collapsed stacks, a flame graph, the hot spots."""
    exe = _pyspy()
    if exe is None:
        return {"error": "py-spy not found (pip install py-spy)"}
    out_dir.mkdir(parents=True, exist_ok=True)
    pid = server.worker_pid()
    summary: dict[str, Any] = {"pid": pid, "server": server.name, "seconds": seconds, "concurrency": concurrency}
    for case in cases:
        if server.name not in case.servers:
            continue
        for fmt, suffix in (("raw", "txt"), ("flamegraph", "svg")):
            path = out_dir / f"{server.name}-{case.name}.{suffix}"
            cmd = [exe, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200", "--function"]
            cmd += ["--format", fmt, "--output", str(path)]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                time.sleep(0.5)  # let py-spy attach before the load starts
                sent = asyncio.run(_load_for(server, case, concurrency, proc))
                _, err = proc.communicate(timeout=seconds + 60)
            finally:
                if proc.poll() is None:
                    proc.kill()
            if proc.returncode != 0 or not path.exists():
                summary[case.name] = {"error": err.decode(errors="replace")[-1000:]}
                break
            if fmt == "raw":
                summary[case.name] = {"requests": sent, "raw": str(path), **summarise_stacks(path)}
            else:
                summary[case.name]["flamegraph"] = str(path)
    return summary


# ---------------------------------------------------------------- main


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in ("payrank", "fastapi", "starlette", "uvicorn", "httpx", "pydantic", "mlflow", "lightgbm"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 2k-guarantor book, few requests, one repeat")
    p.add_argument("--requests", type=int, help="requests per case and repeat (default 300/200/100 by size, 100)")
    p.add_argument("--concurrency", default="1,4", help="comma-separated closed-loop concurrencies (default 1,4)")
    p.add_argument("--repeats", type=int, default=3, help="repeats of every case (medians are reported)")
    p.add_argument("--warmup", type=int, default=10, help="uncounted requests before each measurement")
    p.add_argument("--guarantors", type=int, help=f"book size (default {FULL_GUARANTORS}, quick {QUICK_GUARANTORS})")
    p.add_argument("--mlflow-threads", type=int, default=1, help="OMP_NUM_THREADS of MLflow's server (0: unset)")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where api.json and api_latency.png go")
    p.add_argument("--profile", type=Path, help="afterwards, py-spy the payrank server under load into this dir")
    p.add_argument("--profile-seconds", type=int, default=15, help="seconds of sampling per profiled case")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    repeats = 1 if args.quick else max(1, args.repeats)
    warmup = 1 if args.quick else args.warmup
    guarantors = args.guarantors or (QUICK_GUARANTORS if args.quick else FULL_GUARANTORS)
    requests = dict(QUICK_REQUESTS if args.quick else FULL_REQUESTS)
    if args.requests:
        requests = dict.fromkeys(requests, args.requests)
    machine = machine_info()
    machine["versions"].update(_versions())
    servers: dict[str, Server] = {}
    with tempfile.TemporaryDirectory(prefix="payrank-bench-api-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            log(f"generating a {guarantors:,}-guarantor book and training the champion (num_threads=1) ...")
            tracking_uri = f"sqlite:///{tmp / 'mlflow.db'}"
            model, cases = prepare(guarantors, tracking_uri, requests)
            log(f"  {model['book_accounts']:,} accounts, trained in {model['train_s']:.1f} s; starting both servers")
            key = secrets.token_urlsafe(24)
            servers[PAYRANK] = start_payrank(tmp, tracking_uri, key)
            servers[MLFLOW] = start_mlflow(tmp, tracking_uri, args.mlflow_threads)
            ready = {name: wait_ready(s) for name, s in servers.items()}
            log(f"  ready after {', '.join(f'{n} {s:.1f} s' for n, s in ready.items())}")
            agreement = check_predictions(servers, cases)
            worklist = check_worklist(servers[PAYRANK], cases[-1])
            log(f"  predictions agree on {', '.join(str(a['rows']) for a in agreement)} rows; load ...")
            results = asyncio.run(run_load(servers, cases, concurrencies, repeats, warmup))
            rss = {name: s.rss_mib() for name, s in servers.items()}
            processes = {name: len(s.pids()) for name, s in servers.items()}  # mlflow: its CLI + one uvicorn
            prof = None
            if args.profile:
                log(f"profiling {PAYRANK} with py-spy into {args.profile} ...")
                prof = profile(servers[PAYRANK], cases, args.profile, args.profile_seconds, 1)
        finally:
            for s in servers.values():
                stop(s)
    ratios = compare(results)
    goal_rows = goals(results, ratios)
    table = markdown(results, ratios)
    payload = {
        "benchmark": "api",
        "quick": args.quick,
        "machine": machine,
        "config": {
            "concurrency": concurrencies,
            "repeats": repeats,
            "warmup_requests": f"max({warmup}, concurrency) per case and repeat",
            "requests": {str(k): v for k, v in requests.items()},
            "servers_running": "both at once; measured one at a time, order alternating per repeat",
            "workers": 1,
            "payrank_num_threads": 1,
            "payrank_max_concurrency": "default (CPUs)",
            "mlflow_omp_num_threads": args.mlflow_threads or None,
            "client": f"httpx {version('httpx')} AsyncClient, closed loop, keep-alive, same process for all",
            "bodies": "identical bytes for both servers (dataframe_split JSON)",
        },
        "model": model,
        "worklist_fragment": {**cases[-1].meta, "body_bytes": len(cases[-1].body), **worklist},
        "body_bytes": {c.name: len(c.body) for c in cases},
        "server_start_s": ready,
        "server_rss_mib_after": rss,
        "server_processes": processes,
        "predictions_match": agreement,
        "results": results,
        "p99_ratios": ratios,
        "goals": goal_rows,
        "table_markdown": table,
        "load_average_at_end": list(os.getloadavg()),
    }
    if prof is not None:
        payload["profile"] = prof
    out = write_results(args.results_dir, "api", payload)
    title = f"payrank serve vs mlflow models serve — {machine['nproc']} CPUs, {machine['date']}"
    png = plot(results, Path(args.results_dir) / "api_latency.png", title)
    log("\n" + table + "\n")
    for g in goal_rows:
        conc = "" if g["concurrency"] is None else f" [c={g['concurrency']}]"
        log(f"  {'MET    ' if g['met'] else 'NOT MET'} {g['goal']}{conc}: {g['measured']:.3g}")
    if prof is not None:
        for name, node in prof.items():
            if isinstance(node, dict) and "self" in node:
                log(f"\nprofile {name} ({node['samples']} samples): top self")
                for f in node["self"][:10]:
                    log(f"  {f['share']:6.1%}  {f['frame']}")
                log("  top inclusive (own, MLflow, LightGBM, json frames)")
                for f in node["inclusive"][:12]:
                    log(f"  {f['share']:6.1%}  {f['frame']}")
    log(f"wrote {out} and {png}")
    return payload


if __name__ == "__main__":
    main()
