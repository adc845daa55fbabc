"""What the benchmarks share: book sizes, cached Parquet books, fresh-subprocess measurements, results JSON.

Every measurement runs in a fresh Python process (`run_child`), so its peak RSS is its own. The orchestrating
parent never loads a book: Linux carries a process's peak RSS across fork+exec into the child's
`ru_maxrss`, so a big parent would inflate every child's number. Each child therefore also reports
`VmHWM` (the high-water mark of its own address space, reset at exec) and its `ru_maxrss` at start-up.

Run as `python -m benchmarks.common TARGET JSON` it is the child side: it imports `module:function`, calls
it with the JSON keyword arguments and prints the returned dict, with the peak RSS added, as JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_WORK_DIR = Path(".payrank") / "bench"  # gitignored; books are cached here between runs
BOOK_END = date(2026, 9, 30)
BOOK_SEED = 0
ACCOUNTS_PER_GUARANTOR = 1.5  # features.generate: 1 + Poisson(0.5) accounts per guarantor
FULL_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (3_000,)
RESULT_MARKER = "BENCH-RESULT "
CHILD_ENV = {"GIT_PYTHON_REFRESH": "quiet", "MLFLOW_ENABLE_ASYNC_LOGGING": "false", "PYTHONHASHSEED": "0"}


# ---------------------------------------------------------------- memory and time


def ru_maxrss_mib() -> float:
    """This process's peak RSS in MiB from getrusage (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vm_hwm_mib() -> float:
    """This process's own peak RSS in MiB (VmHWM of /proc/self/status); NaN where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Clock:
    """Named wall-clock laps: `lap(name)` records the seconds since the previous lap (or creation)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> float:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now
        return self.laps[name]


def summarise(values: Sequence[float]) -> dict[str, Any]:
    """Median, min and max of repeated measurements, with the values themselves."""
    vals = [float(v) for v in values]
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals), "values": vals}


def summarise_runs(runs: Sequence[dict[str, Any]], keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """`summarise` of each numeric key over the runs that have it."""
    return {k: summarise([r[k] for r in runs]) for k in keys if runs and all(k in r for r in runs)}


# ---------------------------------------------------------------- books


def guarantors_for(accounts: int) -> int:
    """Guarantors to generate for about `accounts` accounts."""
    return max(1, round(accounts / ACCOUNTS_PER_GUARANTOR))


def book_dir(work_dir: Path, accounts: int) -> Path:
    return Path(work_dir) / f"book-{accounts}-seed{BOOK_SEED}"


def ensure_book(work_dir: Path, accounts: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The cached Parquet book of about `accounts` accounts (generated in a child process once); its meta."""
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    path = book_dir(work_dir, accounts)
    meta_file = path / "bench-book.json"
    if meta_file.exists():
        return {**json.loads(meta_file.read_text()), "path": str(path)}
    log(f"generating a book of ~{accounts:,} accounts into {path} (once; cached) ...")
    meta = run_child("benchmarks.common:generate_child", {"accounts": accounts, "out": str(path)}, timeout=3 * 3600)
    meta_file.write_text(json.dumps(meta, indent=2))
    log(f"  {meta['accounts']:,} accounts, {meta['generate_s']:.0f} s, peak {meta['peak_rss_mib']:.0f} MiB")
    return {**meta, "path": str(path)}


def generate_child(accounts: int, out: str) -> dict[str, Any]:
    """Child side of ensure_book: generate and write the book as Parquet (with truth.parquet)."""
    from features.generate import generate_book, write_book

    clock = Clock()
    book, truth = generate_book(guarantors_for(accounts), seed=BOOK_SEED, end_date=BOOK_END)
    clock.lap("generate_s")
    write_book(book, Path(out), "parquet", truth)
    clock.lap("write_s")
    tables = {name: len(df) for name, df in book.tables().items()}
    return {
        "accounts_requested": accounts,
        "guarantors": guarantors_for(accounts),
        "accounts": len(book.accounts),
        "rows": tables,
        "seed": BOOK_SEED,
        "end_date": BOOK_END.isoformat(),
        "parquet_mib": sum(p.stat().st_size for p in Path(out).glob("*.parquet")) / 2**20,
        **clock.laps,
    }


# ---------------------------------------------------------------- children


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a measurement child: ours, the repo on PYTHONPATH, quiet MLflow."""
    env = {**os.environ, **CHILD_ENV, **(extra or {})}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def run_child(
    target: str, kwargs: dict[str, Any], timeout: float = 3600, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run `module:function(**kwargs)` in a fresh interpreter; its result dict plus peak RSS and wall time."""
    cmd = [sys.executable, "-m", "benchmarks.common", target, json.dumps(kwargs)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env(env))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{target} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARKER)]
    if not lines:
        raise RuntimeError(f"{target} printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    result = json.loads(lines[-1][len(RESULT_MARKER) :])
    result["child_wall_s"] = wall
    return result


def run_command(cmd: Sequence[str], timeout: float = 3600, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command (e.g. the real CLI) as a child; its wall seconds and peak RSS (from wait4's rusage)."""
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(list(cmd), stdout=null, stderr=subprocess.PIPE, env=child_env(env))
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                raise TimeoutError(f"{cmd[0]} took more than {timeout} s")
            time.sleep(0.01)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-4000:]}")
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime}


def _child_main(argv: Sequence[str]) -> None:
    start_maxrss = ru_maxrss_mib()
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    target, kwargs = argv[0], json.loads(argv[1])
    module, func = target.split(":")
    result = getattr(importlib.import_module(module), func)(**kwargs)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result.update(
        peak_rss_mib=ru_maxrss_mib(),
        vm_hwm_mib=vm_hwm_mib(),
        start_maxrss_mib=start_maxrss,
        cpu_s=usage.ru_utime + usage.ru_stime,  # whole child, imports included; less sensitive to contention
        loadavg_start=load_start,
        loadavg_end=os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
        pid=os.getpid(),
    )
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- results and command line


def machine_info() -> dict[str, Any]:
    """Machine, versions and date, for every results file."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    mem_gib = float("nan")
    try:
        cpu = next(
            ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln
        )
        mem_kib = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        mem_gib = int(mem_kib.split()[1]) / 2**20
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version()}
    for pkg in ("pandas", "numpy", "lightgbm", "pyarrow", "scikit-learn", "mlflow"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "cpu": cpu,
        "platform": platform.platform(),
        "versions": versions,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "openblas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ},
        "code": code_version(),
    }


def code_version() -> dict[str, Any]:
    """The commit measured and the files changed since (read-only git; empty outside a checkout)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "features", "training", "serving"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": head.stdout.strip(), "uncommitted": [ln[3:] for ln in dirty.stdout.splitlines()]}


def write_results(results_dir: Path, name: str, payload: dict[str, Any]) -> Path:
    """Write `<results_dir>/<name>.json` atomically."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"{name}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(tmp, out)
    return out


def read_results(results_dir: Path, name: str) -> dict[str, Any] | None:
    path = Path(results_dir) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def parser(description: str, default_repeats: int = 3) -> argparse.ArgumentParser:
    """The options every benchmark takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--sizes", help="comma-separated book sizes in ACCOUNTS (default 10000,100000,1000000)")
    p.add_argument("--repeats", type=int, default=default_repeats, help="fresh processes per size (median)")
    p.add_argument("--quick", action="store_true", help="smoke run: a ~3k-account book, repeats 1")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    p.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="cache of generated books")
    return p


def sizes_and_repeats(args: argparse.Namespace) -> tuple[list[int], int]:
    """Sizes (accounts) and repeats after --quick and --sizes."""
    if args.sizes:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    else:
        sizes = list(QUICK_SIZES if args.quick else FULL_SIZES)
    return sizes, 1 if args.quick else max(1, args.repeats)


def log(msg: str) -> None:
    print(msg, flush=True)


if __name__ == "__main__":
    _child_main(sys.argv[1:])
