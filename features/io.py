"""Writing result frames atomically: CSV or Parquet by the file's extension, never a half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

WRITABLE = (".csv", ".parquet")


def check_output_path(path: str | Path) -> Path:
    """Refuse an output path whose extension we cannot write, before any work is done."""
    out = Path(path)
    if out.suffix.lower() not in WRITABLE:
        raise ValueError(f"--out {str(out)!r}: extension must be one of {', '.join(WRITABLE)}")
    return out


def write_frame(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `df` to a temporary file beside `path`, then rename it into place."""
    out = check_output_path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        if out.suffix.lower() == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
