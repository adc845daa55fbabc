"""Writing result frames atomically: CSV or Parquet by the file's extension, never a half-written file.

An output path is checked before any work is done: the extension, and that it is not a directory, not a
symbolic link (refused rather than replaced or followed: a link in a shared folder may point anywhere) and in a
folder that can be written. The file gets the permissions any new file gets (0666 less the umask, so usually
0644); overwriting a file keeps that file's permissions.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

import pandas as pd

WRITABLE = (".csv", ".parquet")
_UMASK_LOCK = threading.Lock()


def check_output_path(path: str | Path, option: str = "--out") -> Path:
    """Refuse an output path we cannot or must not write, before any work is done (ValueError naming `option`)."""
    out = Path(path)
    if out.suffix.lower() not in WRITABLE:
        raise ValueError(f"{option} {str(out)!r}: extension must be one of {', '.join(WRITABLE)}")
    if out.is_symlink():
        raise ValueError(f"{option} {str(out)!r}: is a symbolic link; give the path of a regular file")
    if out.is_dir():
        raise ValueError(f"{option} {str(out)!r}: is a directory; give a file name ending in {' or '.join(WRITABLE)}")
    if out.exists() and not out.is_file():
        raise ValueError(f"{option} {str(out)!r}: exists and is not a regular file")
    folder = out.absolute().parent
    while not folder.exists():  # the nearest existing folder must let us create the missing ones
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{option} {str(out)!r}: {str(folder)!r} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {str(out)!r}: cannot write in {str(folder)!r}")
    return out


def _new_file_mode() -> int:
    """0666 less the process's umask: what `open(path, "w")` would give a new file."""
    with _UMASK_LOCK:  # reading the umask means setting it; nothing else in payrank creates files meanwhile
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def write_frame(df: pd.DataFrame, path: str | Path, option: str = "--out") -> Path:
    """Write `df` to a temporary file beside `path`, then rename it into place (keeping an old file's mode)."""
    out = check_output_path(path, option)
    out.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(out.stat().st_mode) if out.is_file() else _new_file_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        if out.suffix.lower() == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
        os.chmod(tmp, mode)
        check_output_path(out, option)  # nothing became a link or a folder meanwhile
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to a temporary file beside `path`, then rename it into place (whole or absent)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
