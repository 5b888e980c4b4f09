"""Schemathesis hooks for `make apicheck` (.ci/apicheck): the rules a schema-valid request can still break.

OpenAPI 3.0 states types, formats and bounds; it cannot state a rule that relates two fields (end after start),
reads what is stored (an id that names nothing, a cursor this list never gave, a second reset at one instant) or
reads the clock (an event from the future). Schemathesis sends schema-valid requests that break such rules and,
rightly, reports the 400 as valid data refused. .ci/schemathesis.toml therefore lets a 400 answer schema-valid data,
and the check below holds every such 400 to the rules listed here, by operation: a schema-valid request refused for
any other reason still fails the run.
"""

import re

import schemathesis

INSTANT = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
# Two fields, or a field and a stored row, that must agree.
END_AFTER_START = ("end", rf"must be after start \({INSTANT}\); the range is empty\.")
TOO_MANY_BUCKETS = ("interval", r"asks for more than 10,000 buckets; use a longer interval or a shorter range\.")
ASSIGNMENT_ENDS_AFTER_START = ("valid_to", r"An assignment must end after it starts\.")
ENTERS_A_SIDE = ("enters", r"Doorway .* does not lead into that side\.")
# What is stored.
CURSOR = ("cursor", r"is not a cursor this list gave; follow the Link header's URL, or leave cursor out to start\.")
NO_SPACE = (r"sides\.[01]|enters", r"No space has id \d+\.")
NO_DOORWAY = ("doorway", r"No doorway has id \d+\.")
NO_DPU = ("dpu_id", r"No DPU with serial \d+ is registered\.")
SECOND_RESET = ("timestamp", rf"Space '.*' already has a reset at {INSTANT}\.")
NEGATIVE_RESET = ("count", r"must be 0 or more: space '.*' does not allow negative counts\.")
NEGATIVE_RESETS_STORED = ("allow_negative", r"This space has resets to a count below zero; delete them first\.")
# The clock.
CLOCK = ("timestamp", r"is (before 2000-01-01|more than 5 minutes in the future); .+")
# Text: a name of only spaces is blank once trimmed (Python's idea of a space is not JSON Schema's pattern's).
BLANK_NAME = ("name", r"This field may not be blank\.")
ASSIGNMENT = [NO_SPACE, NO_DOORWAY, ENTERS_A_SIDE, ASSIGNMENT_ENDS_AFTER_START]

RULES = {
    "GET /counts": [END_AFTER_START, TOO_MANY_BUCKETS],
    "GET /space/{space_id}/counts": [END_AFTER_START, TOO_MANY_BUCKETS],
    "GET /space": [CURSOR],
    "GET /doorway": [CURSOR],
    "GET /dpu": [CURSOR],
    "GET /dpu/{serial}/assignments": [CURSOR],
    "GET /dpu/{serial}/events": [CURSOR, END_AFTER_START],
    "GET /space/{space_id}/resets": [CURSOR, END_AFTER_START],
    "POST /space": [BLANK_NAME],
    "PATCH /space/{space_id}": [BLANK_NAME, NEGATIVE_RESETS_STORED],
    "POST /doorway": [BLANK_NAME, NO_SPACE],
    "PATCH /doorway/{doorway_id}": [BLANK_NAME, NO_SPACE],
    "POST /dpu/{serial}/assignments": ASSIGNMENT,
    "PATCH /dpu/{serial}/assignments/{assignment_id}": ASSIGNMENT,
    "POST /space/{space_id}/resets": [CLOCK, SECOND_RESET, NEGATIVE_RESET],
    "POST /events": [CLOCK, NO_DPU],
}


def _explained(operation: str, field: str, message: str) -> bool:
    return any(
        re.fullmatch(field_rule, field) and re.fullmatch(message_rule, message)
        for field_rule, message_rule in RULES.get(operation, [])
    )


def _declared_fields(case) -> set[str] | None:
    """The fields the operation's JSON body declares (None when it has no object body)."""
    raw = case.operation.schema.raw_schema
    operation = raw["paths"][case.operation.path][case.method.lower()]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    ref = body.get("$ref", "")
    component = raw.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1]) if ref else None
    return set(component.get("properties", {})) if component else None


@schemathesis.check
def refused_only_for_rules_the_schema_cannot_state(ctx, response, case):
    """A 400 to schema-valid data must name, in every message, a rule listed in RULES for its operation."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    declared = _declared_fields(case)
    if isinstance(case.body, dict) and declared is not None and set(case.body) - declared:
        # Not schema-valid after all (every body refuses fields it does not declare): the stateful phase puts
        # values from earlier answers, such as an error's `errors`, into a body without checking them.
        return None
    body = response.json()
    errors = body.get("errors") or {body.get("field", ""): [body.get("message", body["detail"])]}
    operation = f"{case.method.upper()} {case.operation.path}"
    unexplained = [
        f"{field}: {message}"
        for field, messages in errors.items()
        for message in messages
        if not _explained(operation, field, message)
    ]
    if unexplained:
        raise AssertionError(
            f"Schema-valid data refused for a reason not in .ci/apicheck_rules.py's RULES[{operation!r}]: "
            + "; ".join(unexplained)
        )
    return None
