"""Counts over time: GET /space/<id>/counts and GET /counts over a long history, each against a baseline measured
in the same run on the same history.

One fill serves all three: `series_spaces` spaces with `series_rows` occupancy rows each (fill_sawtooth, UTC
spaces, no daily reset), spread over SPAN so that a year-long range fits at many starting days.

- A day in 5-minute buckets at random spaces and days, against the count lookup at random spaces and instants
  (requests/s, both with the run's client processes).
- A year in hourly buckets, one request at a time (p50, p99), against the same request for one day.
- Every space's day in one GET /counts, against one GET /space/<id>/counts per space for the same day, one after
  another on one client (each timed end to end), in hourly and in 5-minute buckets.

Before anything is timed, answers are checked: buckets against a reference computed here from the stored rows,
the last bucket's count against the count lookup at the end of the range, and GET /counts against the separate
answers. A wrong answer is reported with the table (Context.problems).
"""

import json
import random
import statistics
import time
from datetime import datetime, timedelta
from urllib.parse import quote

from bench import db, load
from bench.benchmarks import Context, _check_counts_agree, _compare, _deal, _latency, _ms, log
from bench.generate import format_instant, star_building
from bench.results import Result

SPAN = timedelta(days=460)  # the history's length: a year fits at some 90 starting days
DAY, YEAR = timedelta(days=1), timedelta(days=365)  # UTC: 288 five-minute and 8,760 hourly buckets
DAY_TARGET = 0.5  # a day of 5-minute buckets: at least this times the count lookup's requests/s
YEAR_P50_TARGET = 1.0  # seconds
SPACES_TARGET = 0.2  # every space's day in one request: at most this times the separate requests' time (5x faster)
CHECKED_DAYS = 5  # day requests checked bucket by bucket against the stored rows
CHECK_MAX_ROWS = 100_000  # the fill is also checked against a rebuild (of one space) up to this many rows per space
DAY_BASELINE_REQUESTS = 100  # one-day hourly requests, the year's baseline
MAX_PROBLEMS = 20  # wrong answers reported from this benchmark; more say nothing new


def counts_over_time(ctx: Context) -> list[Result]:
    """The three counts-over-time benchmarks on one filled history."""
    from occupancy.services import occupancy_check

    scale = ctx.scale
    rows = scale.series_rows[ctx.database.vendor]
    step_ms = -(-SPAN // timedelta(seconds=1) // rows) * 1000  # whole seconds, as fill_sawtooth needs
    log(f"counts over time: {scale.series_spaces} spaces x {rows:,} rows, one every {step_ms // 1000} s")
    db.reset()
    plan = star_building(spaces=scale.series_spaces, prefix="series-")
    layout = db.create_layout(plan)
    pairs = [(layout.space_ids[i], layout.dpu_ids[dpu.serial]) for i, dpu in enumerate(plan.dpus)]
    history = db.fill_sawtooth(pairs, rows_per_space=rows, step_ms=step_ms)
    if rows <= CHECK_MAX_ROWS and occupancy_check(space_ids=layout.space_ids[:1]):
        _problem(ctx, "The filled counts-over-time history differs from a rebuild: its figures are not trustworthy.")
    # Whole UTC days with rows to their end: the last row is one step before history.last.
    days = [history.first + DAY * i for i in range((history.last - history.step - history.first) // DAY)]
    if len(days) <= YEAR // DAY:
        raise RuntimeError(f"The history spans {len(days)} whole days: too few for a year-long range.")
    ids = layout.space_ids
    rng = random.Random(17)
    per_day = DAY / history.step
    return [
        _day_against_lookup(ctx, ids, days, rng, per_day),
        _year(ctx, ids, days, rng, per_day),
        _spaces(ctx, ids, days, rng, "1h", target=True),
        _spaces(ctx, ids, days, rng, "5m", target=False),
    ]


def _path(space_id: int, start: datetime, end: datetime, interval: str) -> str:
    return f"/space/{space_id}/counts?{_query(start, end, interval)}"


def _query(start: datetime, end: datetime, interval: str) -> str:
    return f"start={quote(format_instant(start))}&end={quote(format_instant(end))}&interval={interval}"


def _problem(ctx: Context, message: str) -> None:
    if sum(1 for problem in ctx.problems if problem.startswith("Counts over time")) < MAX_PROBLEMS:
        ctx.problems.append(f"Counts over time: {message}")


def _get(client: load.Client, path: str) -> tuple[float, bytes]:
    seconds, status, body = client.send("GET", path)
    if status != 200:
        raise load.LoadError(f"GET {path}: {status} {body[:300]!r}")
    return seconds, body


# 1. A day in 5-minute buckets against the count lookup


def _day_against_lookup(ctx: Context, ids: list[int], days: list[datetime], rng, per_day: float) -> Result:
    scale = ctx.scale
    warm = scale.series_warmup
    asked = [(rng.choice(ids), rng.choice(days)) for _ in range(warm + scale.series_day_requests)]
    span_ms = (days[-1] + DAY - days[0]) // timedelta(milliseconds=1)
    lookups = [
        f"/space/{rng.choice(ids)}/count"
        f"?ts={quote(format_instant(days[0] + timedelta(milliseconds=rng.randrange(span_ms))))}"
        for _ in range(warm + scale.series_lookups)
    ]
    log("counts over time: a day in 5-minute buckets, against the count lookup")
    client = load.Client(ctx.port, ctx.token)
    try:
        for space_id, day in asked[:CHECKED_DAYS]:
            _check_buckets(ctx, client, space_id, day, day + DAY, "5m")
    finally:
        client.close()
    _check_counts_agree(ctx, lookups[:20])
    service = [("GET", _path(space_id, day, day + DAY, "5m"), None) for space_id, day in asked]
    baseline = [("GET", path, None) for path in lookups]
    load.concurrent(ctx.port, ctx.token, _deal(service[:warm], ctx.clients))
    load.concurrent(ctx.port, ctx.token, _deal(baseline[:warm], ctx.clients))
    timed = _compare(ctx, _deal(service[warm:], ctx.clients), _deal(baseline[warm:], ctx.clients))
    ratio = timed[0].per_second / timed[1].per_second
    return Result(
        key="series.day",
        name="Counts, one day in 5-minute buckets (288)",
        value=timed[0].per_second,
        unit="req/s",
        baseline=timed[1].per_second,
        baseline_name="count lookup (GET /space/<id>/count?ts=), same history",
        ratio=ratio,
        detail=f"{len(ids)} spaces of {scale.series_rows[ctx.database.vendor]:,} rows, {per_day:,.0f} rows a day; "
        f"counts {_latency(timed[0])}; lookup {_latency(timed[1])}",
        target=f"≥ {DAY_TARGET}x baseline",
        passed=ratio >= DAY_TARGET,
    )


# 2. A year in hourly buckets


def _year(ctx: Context, ids: list[int], days: list[datetime], rng, per_day: float) -> Result:
    scale = ctx.scale
    starts = days[: len(days) - YEAR // DAY]
    years = [(rng.choice(ids), rng.choice(starts)) for _ in range(1 + scale.series_year_requests)]
    one_days = [(rng.choice(ids), rng.choice(days)) for _ in range(scale.series_warmup + DAY_BASELINE_REQUESTS)]
    log(f"counts over time: a year in hourly buckets, {scale.series_year_requests} requests one at a time")
    client = load.Client(ctx.port, ctx.token)
    try:
        space_id, start = years[0]  # checked, and the warm-up
        _check_year(ctx, client, space_id, start, start + YEAR)
        _check_buckets(ctx, client, *one_days[0], one_days[0][1] + DAY, "1h")
    finally:
        client.close()
    service = [("GET", _path(space_id, start, start + YEAR, "1h"), None) for space_id, start in years[1:]]
    baseline = [("GET", _path(space_id, day, day + DAY, "1h"), None) for space_id, day in one_days]
    load.sequential(ctx.port, ctx.token, baseline[: scale.series_warmup])
    year, day = _compare(ctx, [service], [baseline[scale.series_warmup :]])
    p50 = year.percentile(50)
    return Result(
        key="series.year",
        name="Counts, one year in hourly buckets (8,760), p50",
        value=_ms(p50),
        unit="ms",
        baseline=_ms(day.percentile(50)),
        baseline_name="p50 of the same request for one day (24 buckets)",
        ratio=p50 / day.percentile(50),
        detail=f"p99 {_ms(year.percentile(99)):,.0f} ms (of {year.requests}, one at a time, one client); "
        f"about {per_day * 365:,.0f} rows each; one day: {_latency(day)}",
        target=f"p50 < {YEAR_P50_TARGET:g} s",
        passed=p50 < YEAR_P50_TARGET,
    )


# 3. Every space's day in one request, against one request per space


def _spaces(ctx: Context, ids: list[int], days: list[datetime], rng, interval: str, *, target: bool) -> Result:
    trials = ctx.scale.series_trials
    asked = [rng.choice(days) for _ in range(1 + trials)]  # the first is the warm-up
    log(f"counts over time: {len(ids)} spaces' day in {interval} buckets, one request against {len(ids)}")
    together, apart = [], []
    client = load.Client(ctx.port, ctx.token)
    try:
        for trial, day in enumerate(asked):
            query = _query(day, day + DAY, interval)
            one_path = f"/counts?spaces={','.join(str(space_id) for space_id in ids)}&{query}"
            paths = [f"/space/{space_id}/counts?{query}" for space_id in ids]
            # Taking turns, so that neither always goes first on a warm cache.
            for which in ("one", "apart") if trial % 2 else ("apart", "one"):
                if which == "one":
                    seconds, body = _get(client, one_path)
                    answer = json.loads(body)
                    if trial:
                        together.append(seconds)
                else:
                    started = time.perf_counter()
                    bodies = [_get(client, path)[1] for path in paths]
                    if trial:
                        apart.append(time.perf_counter() - started)
            separate = [json.loads(body) for body in bodies]
            if answer != separate:
                differ = [ids[i] for i, (a, b) in enumerate(zip(answer, separate, strict=False)) if a != b]
                _problem(ctx, f"GET {one_path[:80]}...: differs from the separate requests (spaces {differ[:5]}).")
            if trial == 0:
                _check_last_counts(ctx, client, separate, day + DAY)
    finally:
        client.close()
    one, many = statistics.median(together), statistics.median(apart)
    buckets = len(answer[0]["buckets"]) if answer else 0
    return Result(
        key=f"series.spaces_{interval}",
        name=f"Counts of {len(ids)} spaces, one day in {interval} buckets, one GET /counts",
        value=_ms(one),
        unit="ms",
        baseline=_ms(many),
        baseline_name=f"{len(ids)} GET /space/<id>/counts for the same day, one after another",
        ratio=one / many,
        detail=f"{len(ids)} x {buckets} buckets; median of {trials} days, one client",
        target=f"≤ {SPACES_TARGET}x baseline (5x faster)" if target else "",
        passed=one / many <= SPACES_TARGET if target else None,
    )


# Checking answers


def _check_buckets(ctx: Context, client: load.Client, space_id: int, start: datetime, end: datetime, interval):
    """Every bucket of one answer against a reference computed from the stored rows; the last count against the
    count lookup at the end."""
    path = _path(space_id, start, end, interval)
    series = json.loads(_get(client, path)[1])
    step = timedelta(minutes=5) if interval == "5m" else timedelta(hours=1)
    edges = [start + step * i for i in range((end - start) // step + 1)]
    _compare_buckets(ctx, path, series["buckets"], _reference(space_id, edges))
    _check_last_counts(ctx, client, [series], end)


def _check_year(ctx: Context, client: load.Client, space_id: int, start: datetime, end: datetime) -> None:
    """A year of hours: the first and last two days bucket by bucket, the totals against the stored rows, the last
    count against the count lookup."""
    from django.db.models import Count, Max, Q

    from occupancy.models import SpaceOccupancy

    path = _path(space_id, start, end, "1h")
    series = json.loads(_get(client, path)[1])
    buckets = series["buckets"]
    if len(buckets) != YEAR // timedelta(hours=1):
        _problem(ctx, f"GET {path}: {len(buckets)} buckets, not {YEAR // timedelta(hours=1)}.")
        return
    hour = timedelta(hours=1)
    head = [start + hour * i for i in range(49)]
    tail = [end - hour * (48 - i) for i in range(49)]
    _compare_buckets(ctx, path, buckets[:48], _reference(space_id, head))
    _compare_buckets(ctx, path, buckets[-48:], _reference(space_id, tail), first=len(buckets) - 48)
    rows = SpaceOccupancy.objects.filter(space_id=space_id, timestamp__gte=start, timestamp__lt=end).aggregate(
        entrances=Count("id", filter=Q(kind=SpaceOccupancy.Kind.ENTRANCE)),
        exits=Count("id", filter=Q(kind=SpaceOccupancy.Kind.EXIT)),
        top=Max("count"),
    )
    said = {
        "entrances": sum(b["entrances"] for b in buckets),
        "exits": sum(b["exits"] for b in buckets),
        "top": max(b["max"] for b in buckets),
    }
    expected = {**rows, "top": max(rows["top"], _count_before(space_id, start))}
    if said != expected:
        _problem(ctx, f"GET {path}: totals {said}, the stored rows say {expected}.")
    _check_last_counts(ctx, client, [series], end)


def _check_last_counts(ctx: Context, client: load.Client, answers: list[dict], end: datetime) -> None:
    """Each series' last bucket count equals the count lookup at the end of its range."""
    for series in answers:
        path = f"/space/{series['space_id']}/count?ts={quote(format_instant(end))}"
        lookup = json.loads(_get(client, path)[1])["count"]
        if series["buckets"][-1]["count"] != lookup:
            _problem(
                ctx,
                f"space {series['space_id']}: the last bucket before {format_instant(end)} ends at "
                f"{series['buckets'][-1]['count']}, GET {path} says {lookup}.",
            )


def _count_before(space_id: int, instant: datetime) -> int:
    from occupancy.models import SpaceOccupancy

    found = (
        SpaceOccupancy.objects.filter(space_id=space_id, timestamp__lt=instant)
        .order_by(*SpaceOccupancy.LATEST_FIRST)
        .values_list("count", flat=True)
        .first()
    )
    return found or 0


def _reference(space_id: int, edges: list[datetime]) -> list[dict]:
    """The buckets of [edges[0], edges[-1]) as README's rules define them, from the stored rows, in Python: count at
    the end, min, max and the first instant at it, time-weighted average, entrances, exits."""
    from occupancy.models import SpaceOccupancy

    count = _count_before(space_id, edges[0])
    rows = list(
        SpaceOccupancy.objects.filter(space_id=space_id, timestamp__gte=edges[0], timestamp__lt=edges[-1])
        .order_by(*SpaceOccupancy.ORDER)
        .values_list("timestamp", "kind", "count")
    )
    buckets, index = [], 0
    for start, end in zip(edges, edges[1:], strict=False):
        low = high = count
        high_at, since, area, entrances, exits = start, start, 0.0, 0, 0
        while index < len(rows) and rows[index][0] < end:
            instant, kind, new = rows[index]
            area += count * (instant - since).total_seconds()
            since, count = instant, new
            if new > high:
                high, high_at = new, instant
            low = min(low, new)
            entrances += kind == SpaceOccupancy.Kind.ENTRANCE
            exits += kind == SpaceOccupancy.Kind.EXIT
            index += 1
        area += count * (end - since).total_seconds()
        buckets.append(
            {
                "start": format_instant(start),
                "end": format_instant(end),
                "count": count,
                "min": low,
                "max": high,
                "max_at": format_instant(high_at),
                "average": area / (end - start).total_seconds(),
                "entrances": entrances,
                "exits": exits,
                "settled": True,  # the history is long past the settle age, and its rows settled
            }
        )
    return buckets


def _compare_buckets(ctx: Context, path: str, said: list[dict], expected: list[dict], *, first: int = 0) -> None:
    if len(said) != len(expected):
        _problem(ctx, f"GET {path}: {len(said)} buckets, expected {len(expected)}.")
        return
    for number, (bucket, reference) in enumerate(zip(said, expected, strict=True), start=first):
        wrong = [
            f"{name} {bucket.get(name)!r}, expected {value!r}"
            for name, value in reference.items()
            if not (
                abs(bucket.get(name, float("nan")) - value) <= 1e-5 if name == "average" else bucket.get(name) == value
            )
        ]
        if wrong:
            _problem(ctx, f"GET {path}: bucket {number}: {'; '.join(wrong[:3])}.")
            return
