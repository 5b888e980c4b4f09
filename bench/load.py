"""The load client: HTTP requests to the benchmark server on 127.0.0.1, timed one by one.

Standard library only, and no Django import: client processes are started with multiprocessing's "spawn" and
import only this module. Each client keeps its connection open while the server allows it (gunicorn's sync
workers close it after every answer; http.client then reconnects on its own).
"""

import http.client
import multiprocessing
import queue
import time
from collections.abc import Sequence
from dataclasses import dataclass

HOST = "127.0.0.1"  # every request of the benchmarks goes here, and nowhere else
TIMEOUT = 300.0  # seconds for one request: a 1,000-event batch that rewrites a long history can take a while
START_TIMEOUT = 60.0  # for every client process to be up and at the barrier
RESULT_TIMEOUT = 1800.0  # for a client process to finish its share

# (method, path with query string, body or None)
Request = tuple[str, str, bytes | None]


class LoadError(RuntimeError):
    """A request failed (no answer, or not a 2xx): the figure would be meaningless."""


@dataclass(frozen=True)
class LoadResult:
    """What a fixed number of requests took: wall time from the first start to the last answer, and each one."""

    requests: int
    seconds: float
    latencies: list[float]  # seconds, sorted

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)

    @staticmethod
    def merge(results: Sequence["LoadResult"]) -> "LoadResult":
        """Several measurements of the same thing (rounds) as one: requests and seconds add up."""
        return LoadResult(
            requests=sum(r.requests for r in results),
            seconds=sum(r.seconds for r in results),
            latencies=sorted(latency for r in results for latency in r.latencies),
        )


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of sorted values, nearest rank."""
    if not sorted_values:
        raise ValueError("No values to take a percentile of.")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


class Client:
    """One connection to the server, sending requests one after another and timing each."""

    def __init__(self, port: int, token: str):
        self.connection = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json"}

    def send(self, method: str, path: str, body: bytes | None = None) -> tuple[float, int, bytes]:
        """(seconds, status, body) of one request; raises LoadError when there is no answer."""
        headers = self.headers if body is None else {**self.headers, "Content-Type": "application/json"}
        started = time.perf_counter()
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.connection.close()
            raise LoadError(f"{method} {path}: no answer ({exc!r})") from None
        return time.perf_counter() - started, response.status, data

    def run(self, requests: Sequence[Request]) -> list[float]:
        """Send every request in turn; the latency of each. A non-2xx answer raises LoadError."""
        latencies = []
        for method, path, body in requests:
            seconds, status, data = self.send(method, path, body)
            if not 200 <= status < 300:
                raise LoadError(f"{method} {path}: {status} {data[:500].decode(errors='replace')}")
            latencies.append(seconds)
        return latencies

    def close(self) -> None:
        self.connection.close()


def sequential(port: int, token: str, requests: Sequence[Request]) -> LoadResult:
    """The requests one after another on one connection, in this process."""
    client = Client(port, token)
    try:
        started = time.perf_counter()
        latencies = client.run(requests)
        seconds = time.perf_counter() - started
    finally:
        client.close()
    return LoadResult(requests=len(latencies), seconds=seconds, latencies=sorted(latencies))


def _client_process(port: int, token: str, requests: list[Request], barrier, results) -> None:
    try:
        client = Client(port, token)
        barrier.wait(timeout=START_TIMEOUT)
        started = time.perf_counter()
        latencies = client.run(requests)
        results.put(("ok", started, time.perf_counter(), latencies))
        client.close()
    except Exception as exc:  # reported to the parent, which fails the benchmark with it
        results.put(("error", 0.0, 0.0, repr(exc)))


def gather(processes: list, results, *, timeout: float) -> list:
    """Start the client processes and take one outcome of each from the queue `results`, for at most `timeout`
    seconds; every process is ended on the way out. One that dies without a word gives none."""
    for process in processes:
        process.start()
    outcomes = []
    try:
        deadline = time.monotonic() + timeout
        while len(outcomes) < len(processes) and time.monotonic() < deadline:
            try:
                outcomes.append(results.get(timeout=1))
            except queue.Empty:
                if not any(process.is_alive() for process in processes) and results.empty():
                    break  # a client died without a word: what it would have said is not coming
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
    return outcomes


def concurrent(port: int, token: str, shares: Sequence[Sequence[Request]]) -> LoadResult:
    """One client process per share, all starting together; wall time runs from the first start to the last end.

    Each share is sent in its own order: give each client its own DPUs to keep ingest in order.
    """
    if len(shares) == 1:
        return sequential(port, token, shares[0])
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of the parent's Django state
    barrier, results = context.Barrier(len(shares)), context.Queue()
    processes = [
        context.Process(target=_client_process, args=(port, token, list(share), barrier, results), daemon=True)
        for share in shares
    ]
    outcomes = gather(processes, results, timeout=RESULT_TIMEOUT)
    if len(outcomes) < len(processes):
        raise LoadError(f"{len(processes) - len(outcomes)} of {len(processes)} client processes gave no result.")
    errors = [outcome[3] for outcome in outcomes if outcome[0] != "ok"]
    if errors:
        raise LoadError("; ".join(errors))
    return LoadResult(
        requests=sum(len(outcome[3]) for outcome in outcomes),
        seconds=max(outcome[2] for outcome in outcomes) - min(outcome[1] for outcome in outcomes),
        latencies=sorted(latency for outcome in outcomes for latency in outcome[3]),
    )
