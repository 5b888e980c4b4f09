"""gunicorn's settings module for this service (`gunicorn -c config/gunicorn.py config.wsgi`, as `make serve` runs
it): the hooks that keep the metrics right when several worker processes serve.

prometheus_client's multiprocess mode: each worker writes its metrics to files of its own in
PROMETHEUS_MULTIPROC_DIR, and GET /metrics, in whichever worker serves it, adds up every file. That needs
- the variable set before any worker imports prometheus_client: on_starting sets it in the master, before the first
  fork, and every worker inherits it (the application is loaded in each worker, after the fork);
- a directory without the files of an earlier run, whose counts would be added in: a new temporary directory for
  each start, unless the environment names one. `make serve` does, a new one for each start, because its uvicorn
  process (GET /stream) writes there too, and may have written already: it is left as it is;
- a dead worker's live gauges (stream clients connected) dropped: child_exit. Its counters stay, so that totals
  never go down when gunicorn replaces a worker.

Nothing here imports prometheus_client at module level: the master imports this file before on_starting runs.
"""

import os
import shutil
import tempfile
from pathlib import Path

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
_made_here: str | None = None  # the temporary directory on_starting made, removed on exit


def on_starting(server) -> None:
    global _made_here
    directory = os.environ.get(MULTIPROC_DIR)
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
    else:
        directory = _made_here = tempfile.mkdtemp(prefix="occupancy-metrics-")
        os.environ[MULTIPROC_DIR] = directory
    server.log.info("Metrics of every worker are kept in %s (%s)", directory, MULTIPROC_DIR)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _made_here is not None:
        shutil.rmtree(_made_here, ignore_errors=True)
