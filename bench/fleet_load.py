"""The fleet day's client processes (bench/fleet.py): each sends its requests at their due instants, mapped onto
wall time, or at once when it is behind, and times each answer.

Standard library only, and no Django import: started with multiprocessing's "spawn", they import this module,
bench.load and bench.fleet_plan only.
"""

import json
import multiprocessing
import time
from dataclasses import dataclass

from bench.fleet_plan import DAY_MS, Request
from bench.load import Client, LoadError, gather

PROBLEMS_KEPT = 20  # per process: the first few wrong answers are enough to see what went wrong


@dataclass(frozen=True)
class Sent:
    kind: str
    due: float  # wall time (epoch seconds) it was due
    sent: float  # wall time it was sent
    seconds: float  # until its answer
    events: int


def _judge(request: Request, status: int, data: bytes) -> str | None:
    """What is wrong with the answer, or None."""
    if not 200 <= status < 300:
        return f"{request.method} {request.path}: {status} {data[:300].decode(errors='replace')}"
    if request.expect == "ok":
        return None
    answer = json.loads(data)
    if request.expect == "new" and (status != 201 or answer.get("created") != request.events):
        return f"a new {request.kind} of {request.events} events: {status} {answer}"
    if request.expect == "duplicate" and (status != 200 or answer.get("duplicates") != request.events):
        return f"a re-sent batch of {request.events} events: {status} {answer} (expected 200, all duplicates)"
    return None


def run_share(port: int, token: str, requests: list[Request], start: float, day_seconds: float, results) -> None:
    """A client process: send `requests` in order, each no earlier than `start` plus its share of the day."""
    sent, problems, failures = [], [], 0
    try:
        client = Client(port, token)
        scale = day_seconds / DAY_MS
        for request in requests:
            due = start + request.due_ms * scale
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            at = time.time()
            try:
                seconds, status, data = client.send(request.method, request.path, request.body)
            except LoadError as exc:
                seconds, status, data = time.time() - at, 0, repr(exc).encode()
            problem = _judge(request, status, data)
            if problem:
                failures += 1
                if len(problems) < PROBLEMS_KEPT:
                    problems.append(problem)
            sent.append(Sent(request.kind, due, at, seconds, request.events))
        client.close()
        results.put(("ok", sent, failures, problems))
    except Exception as exc:  # reported to the parent, which fails the run with it
        results.put(("error", sent, failures + 1, [*problems, repr(exc)]))


def run(port: int, token: str, shares: list[list[Request]], *, start: float, day_seconds: float, timeout: float):
    """Every share in a process of its own; (every Sent, the number of wrong answers, the first few of them)."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of the parent's Django state
    results = context.Queue()
    processes = [
        context.Process(target=run_share, args=(port, token, share, start, day_seconds, results), daemon=True)
        for share in shares
    ]
    outcomes = gather(processes, results, timeout=timeout)
    failures = sum(outcome[2] for outcome in outcomes) + len(processes) - len(outcomes)
    problems = [problem for outcome in outcomes for problem in outcome[3]]
    if len(outcomes) < len(processes):
        problems.append(f"{len(processes) - len(outcomes)} of {len(processes)} client processes gave no result.")
    return [s for outcome in outcomes for s in outcome[1]], failures, problems
