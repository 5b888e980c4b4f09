"""`python -m bench.stream`: GET /stream with many clients on one machine. How long after the POST that changed a
count each client has the change (p50, p99), with 1 client (the baseline) and with --clients (default 1,000)
idle streams open; and the memory an idle client costs the uvicorn process. Writes its section of BENCHMARKS.md.

The servers are the ones `make serve` runs: gunicorn's sync workers take the POSTs, uvicorn holds the streams.
The clients are one asyncio process of raw sockets on the same machine; its CPU is shared with the servers.
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import db, report
from bench.db import BASE_DIR
from bench.load import HOST
from bench.server import Server, free_port, gunicorn

ROUNDS = 20  # POSTs per measurement, each changing space A's count once


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.stream", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=BASE_DIR / "BENCHMARKS.md")
    return parser.parse_args(argv)


@contextmanager
def uvicorn(env: dict[str, str], log_path: Path):
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", HOST, "--port", str(port)]
    command += ["--no-access-log", "--timeout-graceful-shutdown", "2", "--backlog", "4096"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env={**env, "ALLOWED_HOSTS": HOST}, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(process=process, port=port, workers=0, log_path=log_path)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=15)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class Client:
    """One stream, read by the event loop: the arrival time of each `count` event."""

    def __init__(self):
        self.arrivals: list[tuple[float, int]] = []  # (monotonic time, count)
        self.snapshot = asyncio.Event()

    async def run(self, port: int, token: str, space_id: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port, limit=2**20)
        writer.write(
            f"GET /stream?spaces={space_id} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Token {token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        event = None
        try:
            while line := await reader.readline():
                text = line.decode().strip()
                if text.startswith("event: "):
                    event = text[7:]
                elif text.startswith("data: ") and event is not None:
                    if event == "snapshot":
                        self.snapshot.set()
                    elif event == "count":
                        self.arrivals.append((time.monotonic(), json.loads(text[6:])["count"]))
                    event = None
        finally:
            writer.close()


def post_event(port: int, token: str) -> float:
    """POST one entrance into A (DPU 283 of the sample building) now; the monotonic time it was sent."""
    stamp = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = json.dumps([{"dpu_id": 283, "timestamp": stamp, "direction": 1}]).encode()
    request = urllib.request.Request(
        f"http://{HOST}:{port}/events",
        data=body,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    sent = time.monotonic()
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 201, answer.status
    return sent


async def measure(stream: Server, api: Server, token: str, clients: int) -> dict:
    """Open `clients` streams, note the server's memory, then POST ROUNDS events one at a time and time each
    client's arrival of each change."""
    before = rss_kib(stream.process.pid)
    readers = [Client() for _ in range(clients)]
    tasks = []
    for start in range(0, clients, 100):  # connect in waves: the listen backlog and the auth queries
        for reader in readers[start : start + 100]:
            tasks.append(asyncio.create_task(reader.run(stream.port, token, 1)))
        await asyncio.wait_for(asyncio.gather(*(r.snapshot.wait() for r in readers[start : start + 100])), 120)
    await asyncio.sleep(2)
    idle = rss_kib(stream.process.pid)
    latencies = []
    for _ in range(ROUNDS):
        counts = [len(r.arrivals) for r in readers]
        sent = await asyncio.to_thread(post_event, api.port, token)
        deadline = time.monotonic() + 10
        while any(len(r.arrivals) == n for r, n in zip(readers, counts, strict=True)) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        missing = sum(len(r.arrivals) == n for r, n in zip(readers, counts, strict=True))
        if missing:
            raise RuntimeError(f"{missing} of {clients} clients did not get the change within 10 s")
        latencies += [r.arrivals[n][0] - sent for r, n in zip(readers, counts, strict=True)]
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    return {
        "clients": clients,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "kib_per_client": (idle - before) / clients,
    }


def section(database: db.BenchDatabase, baseline: dict, many: dict) -> str:
    ratio = many["p99_ms"] / baseline["p99_ms"]
    met = "met" if many["p99_ms"] < 1000 else "MISSED"
    return (
        f"## Live stream on {database.label()}\n\n"
        f"{report.machine()}; uvicorn (one process) holding the streams, gunicorn (2 sync workers) taking the POSTs, "
        "the clients in one asyncio process on the same machine. Each of "
        f"{ROUNDS} POSTs changes space A's count once; latency is from sending the POST to a client reading the "
        "`count` event.\n\n"
        "| clients open | p50 | p99 | p99 vs 1 client | target: p99 < 1 s |\n|---|---|---|---|---|\n"
        f"| 1 (baseline) | {baseline['p50_ms']:.1f} ms | {baseline['p99_ms']:.1f} ms | 1.00x | |\n"
        f"| {many['clients']:,} | {many['p50_ms']:.1f} ms | {many['p99_ms']:.1f} ms | {ratio:.2f}x | {met} |\n\n"
        f"Memory of the uvicorn process per idle client: about {many['kib_per_client']:.0f} KiB "
        f"({many['clients']:,} clients, resident set before and after they connected).\n\n"
    )


def main(argv=None) -> int:
    args = parse(argv)
    workdir = Path(tempfile.mkdtemp(prefix="occupancy-bench-stream-"))
    database = db.bench_database(db.user_database_url(), suffix="_stream", workdir=workdir)
    db.create(database)
    try:
        db.manage(database, "init_data")
        token = db.manage(database, "shell", "-c", SHELL_TOKEN).stdout.strip().splitlines()[-1]
        env = {**database.env, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
        with gunicorn(env=env, workers=2, log_path=workdir / "gunicorn.log") as api:
            with uvicorn(env, workdir / "uvicorn.log") as stream:
                baseline = asyncio.run(measure(stream, api, token, 1))
            with uvicorn(env, workdir / "uvicorn.log") as stream:
                many = asyncio.run(measure(stream, api, token, args.clients))
        print(json.dumps({"baseline": baseline, "many": many}, indent=2))
        report.merge(args.output, f"stream-{database.vendor}", section(database, baseline, many))
    finally:
        db.drop(database)
    return 0


SHELL_TOKEN = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True})
print(Token.objects.get_or_create(user=user)[0].key)
"""

if __name__ == "__main__":
    os.chdir(BASE_DIR)
    sys.exit(main())
