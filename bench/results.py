"""What a benchmark produces, and the sizes it runs at."""

from dataclasses import asdict, dataclass


@dataclass
class Result:
    """One row of the table: a figure, the baseline it is compared with, their ratio, and the target, if any."""

    key: str  # stable, for the smoke test and the JSON output: "count.10000", "late.d100", ...
    name: str
    value: float
    unit: str
    baseline: float
    baseline_name: str
    ratio: float  # value / baseline, or what the target says it is
    detail: str = ""
    target: str = ""
    passed: bool | None = None  # None: no target

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Scale:
    """Every size a run uses. `full` is the issue's; `tiny` runs in seconds (the smoke test)."""

    name: str
    count_sizes: dict[str, tuple[int, ...]]  # occupancy rows, per database vendor
    count_spaces: int
    count_requests: int  # timed requests per size, for the service and again for the baseline
    count_warmup: int
    ingest_events: int  # timed single-event POSTs, for the service and again for the baseline
    ingest_warmup: int
    batch_events: int
    batch_size: int
    late_distances: tuple[int, ...]
    late_history: int  # rows of the space the late events land in
    late_repeats: int
    backfill_events: int
    backfill_spaces: int
    backfill_dpus: int
    series_spaces: int  # spaces of the counts-over-time history; GET /counts asks for all of them at once
    series_rows: dict[str, int]  # occupancy rows per space, per database vendor, spread over more than a year
    series_day_requests: int  # timed one-day GET /space/<id>/counts, against
    series_lookups: int  # timed count lookups on the same history
    series_warmup: int
    series_year_requests: int  # timed one-year requests, one at a time
    series_trials: int  # days for which one GET /counts races the separate requests, per bucket length
    rounds: int = 2  # service and baseline take turns, so that drift in the machine hits both alike


FULL = Scale(
    name="full",
    count_sizes={"postgresql": (10**4, 10**6, 10**7), "sqlite": (10**4, 10**6)},
    count_spaces=100,
    count_requests=6_000,
    count_warmup=600,
    ingest_events=3_000,
    ingest_warmup=200,
    batch_events=100_000,
    batch_size=1_000,
    late_distances=(1, 100, 10_000),
    late_history=20_000,
    late_repeats=15,
    backfill_events=1_000_000,
    backfill_spaces=100,
    backfill_dpus=200,
    series_spaces=50,
    series_rows={"postgresql": 10**6, "sqlite": 20_000},
    series_day_requests=1_200,
    series_lookups=3_000,
    series_warmup=100,
    series_year_requests=20,
    series_trials=15,
)

TINY = Scale(
    name="tiny",
    count_sizes={"postgresql": (10**3, 10**4), "sqlite": (10**3, 10**4)},
    count_spaces=10,
    count_requests=300,
    count_warmup=30,
    ingest_events=100,
    ingest_warmup=10,
    batch_events=2_000,
    batch_size=1_000,
    late_distances=(1, 100, 10_000),
    late_history=10_200,
    late_repeats=3,
    backfill_events=10_000,
    backfill_spaces=10,
    backfill_dpus=20,
    series_spaces=5,
    series_rows={"postgresql": 5_000, "sqlite": 5_000},
    series_day_requests=40,
    series_lookups=100,
    series_warmup=10,
    series_year_requests=3,
    series_trials=2,
)

SCALES = {scale.name: scale for scale in (FULL, TINY)}
