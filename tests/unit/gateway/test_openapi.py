"""The OpenAPI document served at /openapi.json stays true to the
implementation: requests generated from its schemas (and arbitrary junk) never
get a 5xx, every non-2xx is problem+json in the documented shape, every 2xx
matches its documented schema, and real requests validate against the
documented request schema."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from services.gateway.app import OPENAPI_PATH, GatewayDeps, create_app
from services.gateway.settings import GatewaySettings
from tests.unit.gateway.fakes import FakeEventLog, FakeRegistry, basic, make_app, valid_dispatch

DOCUMENT: dict[str, Any] = orjson.loads(OPENAPI_PATH.read_bytes())
OPERATION = DOCUMENT["paths"]["/v0.1/dispatch"]["post"]


def component(name: str) -> dict[str, Any]:
    """A schema that refers into the document, so its ``$ref``s resolve."""
    return {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}


REQUEST = Draft202012Validator(component("DispatchRequest"))
ACCEPTED = Draft202012Validator(component("DispatchAccepted"))
PROBLEM = Draft202012Validator(component("Problem"))
DOCUMENTED_STATUSES = {int(code) for code in OPERATION["responses"]}


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values matching ``schema``, for the subset of JSON Schema the document
    uses (objects, arrays, enums, patterns, bounds, oneOf, local $ref).
    Optional properties are sometimes left out, as clients do."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return st.deferred(lambda: from_schema(DOCUMENT["components"]["schemas"][name]))
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "oneOf" in schema:
        return st.one_of([from_schema(option) for option in schema["oneOf"]])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties")
        if properties is None:
            return st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: from_schema(v) for k, v in properties.items() if k in required},
            optional={k: from_schema(v) for k, v in properties.items() if k not in required},
        )
    if kind == "array":
        return st.lists(
            from_schema(schema["items"]),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 3), 4),
        )
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        if schema.get("format") == "uri":
            return st.builds(
                lambda name, ext: f"https://media.example/{name}.{ext}",
                st.text("abc", min_size=1, max_size=3),
                st.sampled_from(["jpg", "png", "gif", "mp3", "mp4", "pdf", "zip", "3gpp"]),
            )
        return st.text(
            min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 20), 20)
        )
    raise AssertionError(f"schema not covered by the generator: {schema}")


class Client:
    """One event loop and one app for all generated examples."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        deps = GatewayDeps(
            settings=GatewaySettings(rate_limit_per_s=0, max_body_bytes=64 * 1024),
            applications=FakeRegistry(make_app()),
            event_log=FakeEventLog(),
        )
        transport = httpx.ASGITransport(app=create_app(deps), raise_app_exceptions=False)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://gateway")

    def post(self, content: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.loop.run_until_complete(
            self.http.post("/v0.1/dispatch", content=content, headers=headers)
        )

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    made = Client()
    yield made
    made.close()


def check_response(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert response.status_code in DOCUMENTED_STATUSES, response.status_code
    if 200 <= response.status_code < 300:
        assert response.headers["content-type"] == "application/json"
        ACCEPTED.validate(response.json())
    else:
        assert response.headers["content-type"] == "application/problem+json"
        PROBLEM.validate(response.json())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
JSON_HEADERS = {"Content-Type": "application/json", "Authorization": basic()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=from_schema(component("DispatchRequest")))
def test_requests_generated_from_the_document_are_answered_as_documented(
    client: Client, body: Any
) -> None:
    REQUEST.validate(body)  # the generator itself stays honest
    response = client.post(orjson.dumps(body), JSON_HEADERS)
    check_response(response)
    # The schema cannot express the cross-field rules; anything it allows is
    # either accepted or refused with the offending fields named.
    assert response.status_code in (202, 422)
    if response.status_code == 422:
        assert response.json()["invalid_parameters"]


@settings(max_examples=150, deadline=None)
@given(
    body=JSON | st.builds(lambda: valid_dispatch()),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/json; charset=utf-8"]
    ),
    auth=st.sampled_from([basic(), basic(secret="wrong"), "Bearer x.y.z", ""]),
)
def test_arbitrary_requests_never_get_a_5xx(
    client: Client, body: Any, content_type: str, auth: str
) -> None:
    headers = {"Content-Type": content_type}
    if auth:
        headers["Authorization"] = auth
    check_response(client.post(json.dumps(body).encode(), headers))


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_get_a_5xx(client: Client, raw: bytes) -> None:
    check_response(client.post(raw, JSON_HEADERS))


def test_accepted_sample_requests_validate_against_the_document(client: Client) -> None:
    samples = [valid_dispatch()]
    template = {
        "from": {"type": "whatsapp", "number": "447700900001"},
        "to": {"type": "whatsapp", "number": "447700900000"},
        "message": {
            "content": {
                "type": "template",
                "template": {"name": "otp", "parameters": [{"default": "1"}, "2"]},
            },
            "whatsapp": {"policy": "deterministic", "locale": "en-GB"},
        },
        "failover": {"expiry_time": 15, "condition_status": "delivered"},
    }
    messenger = {
        "from": {"type": "messenger", "id": "page"},
        "to": {"type": "messenger", "id": "user"},
        "message": {
            "content": {"type": "image", "image": {"url": "https://x.io/a.gif"}},
            "messenger": {"category": "message_tag", "tag": "ACCOUNT_UPDATE"},
        },
    }
    samples.append({"template": "failover", "workflow": [template, messenger]})
    for sample in samples:
        REQUEST.validate(sample)
        response = client.post(orjson.dumps(sample), JSON_HEADERS)
        assert response.status_code == 202, response.text
        check_response(response)


def test_the_document_is_openapi_3_1_with_both_callbacks() -> None:
    assert DOCUMENT["openapi"].startswith("3.1.")
    assert set(OPERATION["callbacks"]) == {"messageStatus", "finalReport"}
    Draft202012Validator.check_schema(component("MessageStatusCallback"))
    Draft202012Validator(component("FinalReport")).validate(
        {
            "dispatch_uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
            "template": "failover",
            "status": "completed",
            "timestamp": "2020-01-01T14:00:00.000Z",
            "usage": {"price": "0.02", "currency": "EUR"},
            "_links": {
                "messages": [
                    {
                        "message_uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
                        "href": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
                        "channel": "viber_service_msg",
                        "usage": {"currency": "EUR", "price": "0.0333"},
                    }
                ]
            },
        }
    )
