"""Benchmark reports: run metadata, tables on the terminal, JSON written atomically, plots."""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (``getrusage``, Linux KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def git_commit() -> str | None:
    """The checkout's commit (``None`` outside a git work tree)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def portable_argument(arg: str, root: Path | None = None) -> str:
    """``arg`` with an absolute path made relative to ``root`` (default: the working
    folder the command ran in; ``<outside>/NAME`` when it lies elsewhere), so a recorded
    command holds no machine-specific path."""
    root = Path.cwd() if root is None else root
    head, sep, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    if not value.startswith("/"):
        return arg
    path = Path(value)
    try:
        shown = str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        shown = f"<outside>/{path.name}"
    return f"{head}{sep}{shown}"


def run_metadata(prog: str, argv: Sequence[str]) -> dict:
    """What every benchmark JSON carries: command, commit, machine, date."""
    return {
        "command": " ".join([prog, *(portable_argument(a) for a in argv)]),
        "git_commit": git_commit(),
        "cpu_count": os.cpu_count(),
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or os.cpu_count(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


def write_json(path: str | Path, data: dict) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (temporary file + rename)."""
    from placeprint.atomic import atomic_open

    path = Path(path)
    with atomic_open(path, "w", make_parents=True) as fh:
        json.dump(_jsonable(data), fh, indent=2)
        fh.write("\n")
    return path


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Print a table with ``rich`` (plain text when not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(str(c), justify="right")
    for row in rows:
        table.add_row(*[_fmt(v) for v in row])
    Console(width=max(120, len(columns) * 14)).print(table)


def _fmt(v) -> str:
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return "-"
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int | np.integer):
        return f"{v:,}"
    return str(v)


def save_figure(fig, path: str | Path) -> Path:
    """Save a matplotlib figure atomically as PNG and close it."""
    import matplotlib.pyplot as plt

    from placeprint.atomic import atomic_open

    path = Path(path)
    try:
        with atomic_open(path, make_parents=True) as fh:
            fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
