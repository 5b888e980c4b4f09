"""The fleet day's plan (bench/fleet.py): the layout, every person's walk through a doorway on the simulated day, and
the requests the DPUs and dashboards make, each due at an instant of the simulated day.

Standard library only, and no Django import: the client processes (bench/fleet_load.py) unpickle what is built here.
Times are milliseconds of the simulated day (0 to DAY_MS); the run maps them onto wall time.
"""

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTES = 1440
DRAIN_FROM_MS = 23 * HOUR_MS + 30 * 60_000  # the curve stops here; whoever is still in goes out by midnight


def _bump(minute: float, centre_h: float, width_min: float) -> float:
    return 2.718281828 ** (-(((minute - centre_h * 60) / width_min) ** 2) / 2)


# People walking through doorways per minute of the day, relative: a sharp morning peak (about ten times the day's
# mean), lunch, a broad evening one, and little at night.
CURVE = [
    0.0
    if minute * 60_000 >= DRAIN_FROM_MS
    else 0.08 + 13 * _bump(minute, 8.5, 25) + 2.5 * _bump(minute, 12.5, 45) + 4 * _bump(minute, 17.5, 60)
    for minute in range(MINUTES)
]


@dataclass(frozen=True)
class Size:
    """What a run simulates, and how hard it presses."""

    dpus: int
    spaces: int
    events_per_dpu: int  # the day's events of a DPU, on average
    day_seconds: float  # wall time of the simulated day
    clients: int  # client processes posting the DPUs' events (the dashboards have one more)
    flush_minutes: int = 15  # a buffering DPU posts what it holds every this many simulated minutes
    live_share: float = 0.05  # DPUs that post each event on its own, at once
    outage_share: float = 0.01  # DPUs offline for hours, then posting their buffer as one batch
    resend_share: float = 0.02  # batches posted twice
    reads_per_second: float = 10.0  # dashboard requests, half count, half a day's 5-minute buckets
    seed: int = 12


@dataclass
class Layout:
    """Space i is a plain index; doorway k (k < dpus) is DPU k's, joining side_a (None: outside) to side_b, which
    its +1 enters. Doorway k < spaces leads from outside into space k, so that every space can empty. The last
    doorway is where the moved DPU goes."""

    spaces: int
    doorways: list[tuple[int | None, int]]
    moved_dpu: int
    move_at_ms: int
    outages: dict[int, tuple[int, int]]  # DPU -> (from, to) ms
    live: set[int]

    @property
    def move_target(self) -> int:
        return len(self.doorways) - 1


@dataclass
class Request:
    due_ms: int  # when on the simulated day it is sent
    kind: str  # single, batch, late, resend, move, count, counts
    method: str
    path: str
    body: bytes | None = None
    events: int = 0
    expect: str = "ok"  # new: 201 and every event created; duplicate: 200 and every event a duplicate; ok: 2xx


@dataclass
class Day:
    layout: Layout
    events: list[tuple[int, int, int]]  # (ms, dpu, direction), in time order
    final_counts: list[int]  # each space's count at the end of the day
    by_client: list[list[Request]] = field(default_factory=list)
    reads: list[Request] = field(default_factory=list)

    @property
    def resent_events(self) -> int:
        return sum(r.events for share in self.by_client for r in share if r.kind == "resend")

    @property
    def late_events(self) -> int:
        return sum(r.events for share in self.by_client for r in share if r.kind == "late")

    def peak_ratio(self) -> float:
        """Events in the busiest simulated quarter hour against the mean quarter hour."""
        quarters = [0] * 96
        for ms, _, _ in self.events:
            quarters[ms // 900_000] += 1
        return max(quarters) / (len(self.events) / 96) if self.events else 0.0


def layout(size: Size) -> Layout:
    rng = random.Random(size.seed)
    doorways: list[tuple[int | None, int]] = []
    for k in range(size.dpus):
        side_b = k % size.spaces
        if k < size.spaces or size.spaces == 1 or rng.random() < 0.3:
            doorways.append((None, side_b))
        else:
            doorways.append((rng.choice([s for s in range(size.spaces) if s != side_b]), side_b))
    candidates = list(range(size.spaces, size.dpus)) or list(range(size.dpus))
    moved = rng.choice(candidates)
    doorways.append((None, (doorways[moved][1] + 1) % size.spaces))
    others = [k for k in range(size.dpus) if k != moved]
    outages = {}
    for k in rng.sample(others, max(1, round(size.dpus * size.outage_share))):
        start = rng.randint(6 * HOUR_MS, 15 * HOUR_MS)
        outages[k] = (start, start + rng.randint(2 * HOUR_MS, 6 * HOUR_MS))
    rest = [k for k in others if k not in outages]
    live = set(rng.sample(rest, min(len(rest), max(1, round(size.dpus * size.live_share)))))
    return Layout(size.spaces, doorways, moved, 12 * HOUR_MS + rng.randint(0, HOUR_MS), outages, live)


def walk(size: Size, plan: Layout) -> tuple[list[tuple[int, int, int]], list[int]]:
    """Every walk through a doorway on the day, in time order, such that no space ever holds fewer than nobody:
    a walk out of an empty space goes the other way, or does not happen. Mornings bring people in, afternoons take
    them out, and at the end of the day everyone still in leaves through their space's outside door."""
    rng = random.Random(size.seed + 1)
    minutes = rng.choices(range(MINUTES), weights=CURVE, k=size.dpus * size.events_per_dpu)
    times = sorted(minute * 60_000 + rng.randrange(60_000) for minute in minutes)
    counts = [0] * plan.spaces
    taken: set[tuple[int, int]] = set()
    events = []

    def emit(ms: int, dpu: int, direction: int) -> None:
        while (dpu, ms) in taken or (dpu == plan.moved_dpu and ms == plan.move_at_ms):
            ms += 1
        taken.add((dpu, ms))
        events.append((ms, dpu, direction))

    for ms in times:
        dpu = rng.randrange(size.dpus)
        door = plan.move_target if dpu == plan.moved_dpu and ms >= plan.move_at_ms else dpu
        side_a, side_b = plan.doorways[door]
        hour = ms / HOUR_MS
        inward = (0.8 if hour < 11 else 0.5 if hour < 14 else 0.3) if side_a is None else 0.5
        can_in = side_a is None or counts[side_a] > 0
        can_out = counts[side_b] > 0
        if not (can_in or can_out):
            continue
        direction = 1 if (rng.random() < inward and can_in) or not can_out else -1
        counts[side_b] += direction
        if side_a is not None:
            counts[side_a] -= direction
        emit(ms, dpu, direction)
    for space in range(plan.spaces):
        for _ in range(counts[space]):
            emit(rng.randint(DRAIN_FROM_MS, DAY_MS - 1), space, -1)  # DPU `space` is its outside door
        counts[space] = 0
    events.sort()
    return events, counts


def _iso(instant_ms: int) -> str:
    return datetime.fromtimestamp(instant_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def build(size: Size, *, day_start_epoch_ms: int, serials: list[int], doorway_ids: list[int], space_ids: list[int]):
    """The day, and the requests of each client process (a DPU's requests all go from one process, in due order)
    and of the dashboards. Timestamps are day_start_epoch_ms plus the simulated instant."""
    plan = layout(size)
    events, final = walk(size, plan)
    day = Day(layout=plan, events=events, final_counts=final, by_client=[[] for _ in range(size.clients)])
    rng = random.Random(size.seed + 2)

    def body(items: list[tuple[int, int, int]]) -> bytes:
        return json.dumps(
            [{"dpu_id": serials[d], "timestamp": _iso(day_start_epoch_ms + ms), "direction": r} for ms, d, r in items]
        ).encode()

    by_dpu: dict[int, list[tuple[int, int, int]]] = {}
    for event in events:
        by_dpu.setdefault(event[1], []).append(event)
    flush = size.flush_minutes * 60_000
    for dpu, own in by_dpu.items():
        share = day.by_client[dpu % size.clients]
        if dpu in plan.live:
            for event in own:
                share.append(
                    Request(event[0] + rng.randint(0, 2_000), "single", "POST", "/events", body([event]), 1, "new")
                )
            continue
        start_at = rng.randrange(flush)  # each DPU's flushes fall at its own phase
        outage = plan.outages.get(dpu)
        batches: list[tuple[int, str, list]] = []
        down = [e for e in own if outage and outage[0] <= e[0] < outage[1]]
        if down:
            batches.append((outage[1] + rng.randint(0, 60_000), "late", down))
        groups: dict[int, list] = {}
        for event in own:
            if not (outage and outage[0] <= event[0] < outage[1]):
                groups.setdefault(start_at + ((event[0] - start_at) // flush + 1) * flush, []).append(event)
        batches += [(due, "batch", items) for due, items in groups.items()]
        for due, kind, items in batches:
            due = min(due, DAY_MS)
            share.append(Request(due, kind, "POST", "/events", body(items), len(items), "new"))
            if rng.random() < size.resend_share or kind == "late":
                share.append(
                    Request(
                        due + rng.randint(5_000, 600_000),
                        "resend",
                        "POST",
                        "/events",
                        body(items),
                        len(items),
                        "duplicate",
                    )
                )
    # The move is posted an hour after it happened: the DPU's events since then were counted at its old doorway.
    target_space = plan.doorways[plan.move_target][1]
    move = {
        "doorway": doorway_ids[plan.move_target],
        "enters": space_ids[target_space],
        "valid_from": _iso(day_start_epoch_ms + plan.move_at_ms),
    }
    day.by_client[plan.moved_dpu % size.clients].append(
        Request(
            plan.move_at_ms + HOUR_MS,
            "move",
            "POST",
            f"/dpu/{serials[plan.moved_dpu]}/assignments",
            json.dumps(move).encode(),
        )
    )
    for share in day.by_client:
        share.sort(key=lambda r: r.due_ms)
    reads = round(size.reads_per_second * size.day_seconds)
    window = urlencode({"start": _iso(day_start_epoch_ms), "end": _iso(day_start_epoch_ms + DAY_MS), "interval": "5m"})
    for i in range(reads):
        space = space_ids[rng.randrange(len(space_ids))]
        due = (i * DAY_MS) // max(1, reads)
        if i % 2:
            day.reads.append(Request(due, "counts", "GET", f"/space/{space}/counts?{window}"))
        else:
            day.reads.append(Request(due, "count", "GET", f"/space/{space}/count"))
    return day
