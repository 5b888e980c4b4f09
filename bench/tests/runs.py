"""Running a benchmark as `make bench` or `make fleet` would: `python -m <module>` in a process of its own."""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def run_module(arguments: list[str], *, work: Path, timeout: float) -> subprocess.CompletedProcess:
    """`python -m` with `arguments` from the project's folder, its work folder (and SQLite database) in `work`."""
    return subprocess.run(
        [sys.executable, "-m", *arguments],
        cwd=BASE_DIR,
        env={**os.environ, "TMPDIR": str(work)},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
