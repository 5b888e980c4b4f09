"""The OpenAPI schema (GET /api/schema) and its documentation (GET /api/docs): complete, readable without a token,
and served with no internet access."""

import json
import re

import jsonschema
import pytest
import yaml
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")
NOT_THE_API = ("admin/", "^api/schema", "^api/docs")


def url_operations() -> set[tuple[str, str]]:
    """(path as the schema writes it, method) for every DRF view the URL patterns route to, read off the patterns
    themselves: `^space/(?P<space_id>[0-9]{1,18})/?$` is /space/{space_id}."""
    found = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and not route.startswith(NOT_THE_API):
                view_class = getattr(pattern.callback, "view_class", None)
                if view_class is None or not issubclass(view_class, APIView):
                    continue  # a page for people (the dashboard, sign-in), not the API
                path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)
                path = "/" + path.removeprefix("^").removesuffix("$").removesuffix("/?")
                found.update((path, method) for method in METHODS if hasattr(view_class, method))

    walk(get_resolver().url_patterns, "")
    return found


def schema(client) -> dict:
    response = client.get("/api/schema")
    assert response.status_code == 200
    return json.loads(response.content)


def test_every_endpoint_and_method_is_in_the_schema_and_nothing_else(client):
    paths = schema(client)["paths"]
    documented = {(path, method) for path, operations in paths.items() for method in operations if method in METHODS}

    assert url_operations(), "the URL patterns were not read"
    assert documented == url_operations()


def test_the_schema_is_readable_without_a_token_or_with_a_wrong_one(client):
    assert client.get("/api/schema").status_code == 200
    assert client.get("/api/schema", HTTP_AUTHORIZATION="Token not-a-token").status_code == 200
    assert client.get("/api/docs").status_code == 200


def test_the_schema_is_json_unless_yaml_is_asked_for(client):
    as_json = client.get("/api/schema")
    by_param = client.get("/api/schema", {"format": "yaml"})
    by_accept = client.get("/api/schema", HTTP_ACCEPT="application/yaml")

    assert as_json["Content-Type"].startswith("application/json")
    assert json.loads(as_json.content)["openapi"].startswith("3.")
    for response in (by_param, by_accept):
        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/yaml")
        assert yaml.safe_load(response.content) == json.loads(as_json.content)


def test_every_operation_says_its_errors_and_how_to_authenticate(client):
    document = schema(client)
    schemes = set(document["components"]["securitySchemes"])
    public = []

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            security = {name for entry in operation.get("security", []) for name in entry}
            if not security:  # no token needed: nothing to refuse
                public.append(where)
                continue
            assert {"401", "403"} <= set(operation["responses"]), where
            assert "tokenAuth" in security and security <= schemes, where

    assert public == ["GET /health"]


def test_every_operation_that_answers_json_shows_an_example(client):
    for path, operations in schema(client)["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                body = response.get("content", {}).get("application/json")
                if status.startswith("2") and body is not None:
                    assert "examples" in body or "example" in body, f"{method.upper()} {path} {status}"


def test_the_documentation_page_loads_only_this_services_own_files(client):
    page = client.get("/api/docs").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)

    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset  # no CDN: the docs work without internet access
        response = client.get(asset)
        assert response.status_code == 200, asset


def test_the_schema_generates_without_a_warning(tmp_path):
    """What a view without its own declarations gives (drf-spectacular guesses, and warns): a new endpoint must say
    its request, responses and parameters before this passes."""
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_every_pattern_in_the_schema_is_anchored(client):
    """A JSON Schema pattern matches anywhere in the text: unanchored, "x04:00y" would pass as a local time the API
    refuses (found by Schemathesis)."""

    def patterns(node):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                yield node["pattern"]
            for value in node.values():
                yield from patterns(value)
        elif isinstance(node, list):
            for value in node:
                yield from patterns(value)

    found = list(patterns(schema(client)))
    assert found
    assert [pattern for pattern in found if not (pattern.startswith("^") and pattern.endswith("$"))] == []


def accepts(doc: dict, component: str, instance) -> bool:
    """Whether the schema's `component` accepts `instance`, with OpenAPI 3.0's `nullable` read as JSON Schema's null."""

    def plain(node):
        if isinstance(node, dict):
            node = {key: plain(value) for key, value in node.items()}
            if node.pop("nullable", False):
                node = (
                    node | {"type": [node["type"], "null"]} if "type" in node else {"anyOf": [node, {"type": "null"}]}
                )
            return node
        return [plain(value) for value in node] if isinstance(node, list) else node

    root = plain({"$ref": f"#/components/schemas/{component}", "components": doc["components"]})
    return jsonschema.Draft4Validator(root).is_valid(instance)


def test_the_schema_refuses_the_batches_and_doorway_sides_the_api_refuses(client):
    """An empty or oversized batch, and a doorway whose sides are the same space or outside twice, are refused by
    the API (dpu and spaces tests); the schema says so too, so a client or a fuzzer knows before sending."""
    doc = schema(client)
    event = {"dpu_id": 283, "timestamp": "2018-03-03T09:00:00.000Z", "direction": 1}
    assert accepts(doc, "EventOrBatchRequest", event)
    assert accepts(doc, "EventOrBatchRequest", [event] * 10_000)
    assert not accepts(doc, "EventOrBatchRequest", [])
    assert not accepts(doc, "EventOrBatchRequest", [event] * 10_001)
    for component in ("NewDoorwayRequest", "PatchedDoorwayChangeRequest"):
        assert accepts(doc, component, {"name": "Lobby door", "sides": [None, 3]})
        assert accepts(doc, component, {"name": "Lobby door", "sides": [2, 3]})
        assert not accepts(doc, component, {"name": "Lobby door", "sides": [3, 3]})
        assert not accepts(doc, component, {"name": "Lobby door", "sides": [None, None]})
        assert not accepts(doc, component, {"name": "Lobby\x00door", "sides": [None, 3]})  # DRF refuses NUL
