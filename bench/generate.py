"""Synthetic buildings and event streams for the benchmarks: seeded, so every run sees the same data.

A building has N spaces, doorways between them and to outside, and M DPUs, each hanging over one doorway from
long before its first event with a +1 entering the doorway's inner side. The event stream walks simulated people
through the doorways in time order: a +1 when someone can enter, a -1 when someone can leave, drawn towards a
target occupancy, with a little sensor noise (a -1 on an empty space, which the service holds at zero) and,
optionally, exact re-sends of events (duplicates).

Standard library only, no Django: `python -m bench.generate --help` writes a stream as CSV for other tools.
"""

import argparse
import csv
import json
import random
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Far enough in the past that every generated event is long settled, fixed so that runs are reproducible.
START = datetime(2024, 1, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INSTALLED = START - timedelta(days=1)  # every DPU hangs where it does from before the first event
CSV_COLUMNS = ("timestamp", "direction", "dpu_id")  # as fixtures/dpu_data.csv and `import_events` have them


@dataclass(frozen=True)
class DoorwaySpec:
    """A doorway between two sides: indexes into Building.spaces, None for outside. A +1 enters side_b."""

    name: str
    side_a: int | None
    side_b: int


@dataclass(frozen=True)
class DpuSpec:
    """A DPU over doorway `doorway` (an index into Building.doorways) since `valid_from`."""

    serial: int
    doorway: int
    valid_from: datetime


@dataclass(frozen=True)
class Building:
    spaces: list[str]
    doorways: list[DoorwaySpec]
    dpus: list[DpuSpec]


@dataclass(frozen=True)
class Event:
    serial: int
    timestamp: datetime  # aware, UTC, whole milliseconds
    direction: int


def building(
    *, spaces: int, dpus: int, seed: int, prefix: str = "", serial_base: int = 1000, outside_share: float = 0.25
) -> Building:
    """N spaces joined like a real floor: each space's first doorway leads to outside (space 0, and about
    `outside_share` of the others) or to an earlier space, so everything is reachable. DPUs beyond N hang over
    extra doorways between random spaces or to outside; with fewer DPUs than spaces the last doorways have none."""
    if spaces < 1 or dpus < 1:
        raise ValueError("A building needs at least one space and one DPU.")
    rng = random.Random(seed)
    doorways = []
    for index in range(spaces):
        parent = None if index == 0 or rng.random() < outside_share else rng.randrange(index)
        doorways.append(DoorwaySpec(name=f"{prefix}door-{index}", side_a=parent, side_b=index))
    while len(doorways) < dpus:
        inner = rng.randrange(spaces)
        outer = None if spaces == 1 or rng.random() < outside_share else rng.randrange(spaces)
        if outer != inner:
            doorways.append(DoorwaySpec(name=f"{prefix}door-{len(doorways)}", side_a=outer, side_b=inner))
    return Building(
        spaces=[f"{prefix}space-{index}" for index in range(spaces)],
        doorways=doorways,
        dpus=[DpuSpec(serial=serial_base + j, doorway=j, valid_from=INSTALLED) for j in range(dpus)],
    )


def star_building(*, spaces: int, prefix: str = "", serial_base: int = 1000) -> Building:
    """N spaces, each with one doorway to outside and one DPU over it: every event touches exactly one space."""
    return Building(
        spaces=[f"{prefix}space-{index}" for index in range(spaces)],
        doorways=[DoorwaySpec(name=f"{prefix}door-{index}", side_a=None, side_b=index) for index in range(spaces)],
        dpus=[DpuSpec(serial=serial_base + index, doorway=index, valid_from=INSTALLED) for index in range(spaces)],
    )


def events(
    plan: Building,
    *,
    count: int,
    seed: int,
    start: datetime = START,
    mean_interval_ms: float = 500.0,
    duplicates: float = 0.0,
    noise: float = 0.01,
    target: int = 20,
) -> Iterator[Event]:
    """`count` events in time order (re-sends repeat the event just sent, so they are in order too).

    Timestamps grow by at least a millisecond per event, so two distinct events never collide on the unique
    (DPU, timestamp, direction) key. Memory is constant: a million events can be streamed into a file.
    """
    rng = random.Random(seed)
    people = [0] * len(plan.spaces)
    sides = [(plan.doorways[dpu.doorway].side_a, plan.doorways[dpu.doorway].side_b) for dpu in plan.dpus]
    instant_ms = (start - EPOCH) // timedelta(milliseconds=1)
    produced = 0
    while produced < count:
        pick = rng.randrange(len(plan.dpus))
        outer, inner = sides[pick]
        can_enter = outer is None or people[outer] > 0
        can_leave = people[inner] > 0
        if can_enter and can_leave:
            # Drawn towards `target` people: busier spaces empty out, empty ones fill up.
            p_enter = min(0.9, max(0.1, 0.5 + 0.4 * (target - people[inner]) / target))
            direction = 1 if rng.random() < p_enter else -1
        else:
            direction = -1 if can_leave else 1
        if rng.random() < noise:
            direction = -direction  # a miscount: the service holds a space at zero, the simulation does too
        people[inner] = max(0, people[inner] + direction)
        if outer is not None:
            people[outer] = max(0, people[outer] - direction)
        instant_ms += max(1, round(rng.expovariate(1 / mean_interval_ms)))
        event = Event(
            serial=plan.dpus[pick].serial,
            timestamp=EPOCH + timedelta(milliseconds=instant_ms),
            direction=direction,
        )
        yield event
        produced += 1
        if produced < count and duplicates and rng.random() < duplicates:
            yield event  # the DPU was unsure the first copy arrived
            produced += 1


def format_instant(instant: datetime) -> str:
    """UTC with milliseconds and a Z, as DPUs send them."""
    return f"{instant.astimezone(UTC):%Y-%m-%dT%H:%M:%S}.{instant.microsecond // 1000:03d}Z"


def as_item(event: Event) -> dict:
    """The event as a POST /events item."""
    return {"dpu_id": event.serial, "timestamp": format_instant(event.timestamp), "direction": event.direction}


def write_csv(stream: Iterable[Event], path: Path) -> int:
    """Write events as `import_events` reads them (timestamp,direction,dpu_id); returns how many."""
    written = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for event in stream:
            writer.writerow((format_instant(event.timestamp), event.direction, event.serial))
            written += 1
    return written


def layout_json(plan: Building) -> str:
    return json.dumps(asdict(plan), default=lambda value: value.isoformat(), indent=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", type=int, default=50)
    parser.add_argument("--dpus", type=int, default=100)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duplicates", type=float, default=0.0, help="share of events re-sent (0 to 1)")
    parser.add_argument("--csv", type=Path, required=True, help="where to write the events")
    parser.add_argument("--layout", type=Path, help="also write the building as JSON here")
    args = parser.parse_args(argv)
    plan = building(spaces=args.spaces, dpus=args.dpus, seed=args.seed)
    written = write_csv(events(plan, count=args.events, seed=args.seed, duplicates=args.duplicates), args.csv)
    if args.layout:
        args.layout.write_text(layout_json(plan))
    print(f"{written} events for {args.spaces} spaces and {args.dpus} DPUs written to {args.csv}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
