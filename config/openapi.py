"""What the OpenAPI schema (GET /api/schema, drf-spectacular) needs beyond the views' own declarations: paths as
clients write them, the DPU token scheme, and the error bodies every endpoint shares."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.renderers import OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2
from drf_spectacular.utils import OpenApiResponse
from drf_spectacular.views import SpectacularAPIView

from config.renderers import FormatParamNegotiation


class SchemaApi(SpectacularAPIView):
    """GET /api/schema: JSON unless `Accept: application/yaml` or `format=yaml` asks for YAML."""

    renderer_classes = [OpenApiJsonRenderer2, OpenApiYamlRenderer2, OpenApiYamlRenderer]
    content_negotiation_class = FormatParamNegotiation


def paths_without_trailing_slash(endpoints, **kwargs):
    """Every path answers with and without a trailing slash (config.api.api_path); the schema names it without."""
    return [(path.rstrip("/") or "/", regex, method, callback) for path, regex, method, callback in endpoints]


class NameFieldSchema(OpenApiSerializerFieldExtension):
    """A name as CharField maps it, plus what DRF refuses in any text: the null character (found by Schemathesis)."""

    target_class = "config.api.NameField"

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        return {**schema, "pattern": "^[^\\u0000]*$"}


class DpuTokenScheme(OpenApiAuthenticationExtension):
    target_class = "dpu.authentication.DpuTokenAuthentication"
    name = "dpuToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A DPU's own token, \"Token dpu_…\": it may post that DPU's events and nothing else.",
        }


# Every error body (config.api.error_body): `detail`, a sentence for a person, and for a validation error that
# names fields, `errors`: each field's messages.
ERROR = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, for a person."},
        "errors": {
            "type": "object",
            "description": "Only when fields or query parameters are not valid: each one's messages.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["detail"],
    "example": {
        "detail": "end: must be after start (2018-02-26T00:00:00.000Z); the range is empty.",
        "errors": {"end": ["must be after start (2018-02-26T00:00:00.000Z); the range is empty."]},
    },
}

WHY = {
    400: "The request is not valid: the body says which field or parameter, and why.",
    401: "No token, or one the service does not know.",
    403: "The token may not do this.",
    404: "No such object.",
    409: "The request conflicts with what is stored: the body says why and what to do instead.",
    413: "The body is larger than the service takes.",
    503: "The service cannot answer this here and now: the body says why.",
}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error responses an operation may give, with the shared body."""
    return {status: OpenApiResponse(ERROR, description=WHY[status]) for status in statuses}


def strict_request_bodies(result, generator, request, public):
    """Every request body of this API refuses fields it does not know (config.api.StrictSerializer, and the events
    endpoint's own check): the schema says so, so that a client or a fuzzer is not told extra fields are fine."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result
