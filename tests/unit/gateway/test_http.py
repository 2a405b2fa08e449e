"""The HTTP surface through Starlette's TestClient, with a fake event log and
an in-memory registry: the auth matrix, the error matrix, idempotency and the
rate limit."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from events.dispatch import WorkflowRequested
from services.gateway.app import GatewayDeps, create_app
from services.gateway.metrics import REQUESTS
from services.gateway.settings import GatewaySettings
from tests.unit.gateway.fakes import (
    FakeEventLog,
    FakeRegistry,
    basic,
    make_app,
    valid_dispatch,
)

PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = (
    PRIVATE_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Gateway:
    def __init__(self, client: httpx.AsyncClient, event_log: FakeEventLog, registry: FakeRegistry):
        self.client = client
        self.event_log = event_log
        self.registry = registry

    async def post(
        self, body: Any = None, *, auth: str | None = None, raw: bytes | None = None, **headers: str
    ) -> Any:
        sent = {"Content-Type": "application/json", **headers}
        if auth is not None:
            sent["Authorization"] = auth
        content = (
            raw if raw is not None else orjson.dumps(body if body is not None else valid_dispatch())
        )
        return await self.client.post("/v0.1/dispatch", content=content, headers=sent)


async def make_gateway(**settings: Any) -> AsyncIterator[Gateway]:
    registry = FakeRegistry(make_app(public_key_pem=PUBLIC_PEM), make_app("app-2", "key-2"))
    event_log = FakeEventLog()
    deps = GatewayDeps(
        settings=GatewaySettings(**settings), applications=registry, event_log=event_log
    )
    transport = httpx.ASGITransport(app=create_app(deps), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield Gateway(client, event_log, registry)


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    async for gateway in make_gateway():
        yield gateway


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "detail", "instance"} <= set(body)
    assert "Traceback" not in response.text
    return body


def token(claims: dict[str, Any], key: Any = PRIVATE_KEY, alg: str = "RS256") -> str:
    return "Bearer " + jwt.encode(claims, key, algorithm=alg)


def forged_hs256(claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 token whose HMAC key is the public key: the classic RS/HS
    confusion attack (PyJWT refuses to build one, so it is built by hand)."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(orjson.dumps(claims))
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return "Bearer " + (signing_input + b"." + b64(signature)).decode()


def claims(**extra: Any) -> dict[str, Any]:
    return {"application_id": "app-1", "exp": int(time.time()) + 60, **extra}


# -- the happy path ----------------------------------------------------------------
async def test_accepted_dispatch_is_on_the_log_before_the_202(gw: Gateway) -> None:
    response = await gw.post(auth=basic())
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    (event,) = gw.event_log.appended
    assert isinstance(event, WorkflowRequested)
    assert response.json() == {"dispatch_uuid": str(event.dispatch_uuid)}
    assert event.application_id == "app-1"
    assert event.workflow == valid_dispatch()["workflow"]


async def test_bearer_jwt_is_accepted(gw: Gateway) -> None:
    assert (await gw.post(auth=token(claims()))).status_code == 202


# -- the auth matrix ---------------------------------------------------------------
@pytest.mark.parametrize(
    "auth",
    [
        None,
        basic(secret="wrong"),
        basic(api_key="nobody"),
        "Basic not-base64!",
        "Basic " + "bm9jb2xvbg==",  # "nocolon"
        "Digest abc",
        "Bearer not-a-jwt",
        token(claims(exp=int(time.time()) - 100)),  # expired beyond the leeway
        token({"application_id": "app-1"}),  # no exp
        token({"exp": int(time.time()) + 60}),  # no application_id
        token(claims(), key=OTHER_KEY),  # signed by someone else
        token(claims(application_id="app-2")),  # app-2 has no public key
        token(claims(application_id="ghost")),
        forged_hs256(claims(), PUBLIC_PEM.encode()),  # HS/RS confusion
        "Bearer " + jwt.encode(claims(), None, algorithm="none"),
        basic() + ", " + token(claims()),
    ],
)
async def test_wrong_or_missing_credentials_get_401(gw: Gateway, auth: str | None) -> None:
    body = assert_problem(await gw.post(auth=auth), 401)
    assert body["status"] == 401
    assert gw.event_log.appended == []


async def test_401_carries_a_challenge(gw: Gateway) -> None:
    response = await gw.post()
    assert_problem(response, 401)
    assert "Basic" in response.headers["www-authenticate"]
    assert "Bearer" in response.headers["www-authenticate"]


async def test_basic_and_bearer_headers_at_once_get_401(gw: Gateway) -> None:
    response = await gw.client.post(
        "/v0.1/dispatch",
        content=orjson.dumps(valid_dispatch()),
        headers=[
            ("Content-Type", "application/json"),
            ("Authorization", basic()),
            ("Authorization", token(claims())),
        ],
    )
    assert "not both" in assert_problem(response, 401)["detail"]


async def test_a_rotated_secret_is_refused_at_once_after_the_old_one_was_accepted(
    gw: Gateway,
) -> None:
    assert (await gw.post(auth=basic())).status_code == 202
    assert (await gw.post(auth=basic())).status_code == 202  # the check remembered
    rotated = make_app(public_key_pem=PUBLIC_PEM, secret="a-new-s3cret-s3cret")
    gw.registry.apps[rotated.application_id] = rotated
    assert_problem(await gw.post(auth=basic()), 401)
    assert (await gw.post(auth=basic(secret="a-new-s3cret-s3cret"))).status_code == 202


async def test_a_removed_application_is_refused_after_it_was_accepted(gw: Gateway) -> None:
    assert (await gw.post(auth=basic("key-2"))).status_code == 202
    del gw.registry.apps["app-2"]
    assert_problem(await gw.post(auth=basic("key-2")), 401)


# -- the error matrix --------------------------------------------------------------
async def test_malformed_json_is_400(gw: Gateway) -> None:
    assert_problem(await gw.post(auth=basic(), raw=b'{"template": "failover",'), 400)
    assert_problem(await gw.post(auth=basic(), raw=b""), 400)


async def test_wrong_content_type_is_415(gw: Gateway) -> None:
    response = await gw.post(auth=basic(), **{"Content-Type": "text/plain"})
    assert_problem(response, 415)


async def test_body_over_the_limit_is_413() -> None:
    async for gw in make_gateway(max_body_bytes=200):
        assert_problem(await gw.post(auth=basic()), 413)

        # A body streamed without Content-Length is counted as it arrives.
        async def chunks() -> AsyncIterator[bytes]:
            for chunk in (b'{"template": "failover", "workflow": [', b" " * 300, b"]}"):
                yield chunk

        response = await gw.client.post(
            "/v0.1/dispatch",
            content=chunks(),
            headers={"Content-Type": "application/json", "Authorization": basic()},
        )
        assert_problem(response, 413)
        assert gw.event_log.appended == []


async def test_unknown_route_is_404_problem(gw: Gateway) -> None:
    assert_problem(await gw.client.get("/v0.2/nothing"), 404)


async def test_wrong_method_is_405_problem(gw: Gateway) -> None:
    response = await gw.client.get("/v0.1/dispatch")
    assert_problem(response, 405)
    assert "POST" in response.headers["allow"]


async def test_invalid_dispatch_is_422_naming_every_field(gw: Gateway) -> None:
    body = valid_dispatch()
    body["workflow"][0]["to"]["number"] = "+447700900000"
    del body["workflow"][0]["failover"]
    problem = assert_problem(await gw.post(body, auth=basic()), 422)
    names = {p["name"] for p in problem["invalid_parameters"]}
    assert names == {"workflow[0].to.number", "workflow[0].failover"}
    assert all(p["reason"] for p in problem["invalid_parameters"])


async def test_kafka_not_acknowledging_is_503(gw: Gateway) -> None:
    gw.event_log.available = False
    assert_problem(await gw.post(auth=basic()), 503)


async def test_unexpected_failure_is_a_500_problem_without_internals(gw: Gateway) -> None:
    async def explode(_event: Any) -> None:
        raise RuntimeError("secret internals")

    gw.event_log.append = explode  # type: ignore[method-assign]
    response = await gw.post(auth=basic())
    body = assert_problem(response, 500)
    assert "secret internals" not in response.text
    assert body["status"] == 500


# -- rate limit --------------------------------------------------------------------
async def test_rate_limit_per_application_is_429_with_retry_after() -> None:
    async for gw in make_gateway(rate_limit_per_s=0.5, rate_limit_burst=2):
        assert (await gw.post(auth=basic())).status_code == 202
        assert (await gw.post(auth=basic())).status_code == 202
        response = await gw.post(auth=basic())
        assert_problem(response, 429)
        assert int(response.headers["retry-after"]) >= 1
        # Another application has its own bucket.
        assert (await gw.post(auth=token(claims()))).status_code == 429  # same app-1 via JWT
        gw.registry.apps["app-2"] = make_app("app-2", "key-2")
        assert (await gw.post(auth=basic("key-2"))).status_code == 202


# -- idempotency -------------------------------------------------------------------
async def test_same_key_same_body_gives_same_dispatch_and_one_event(gw: Gateway) -> None:
    first = await gw.post(auth=basic(), **{"Idempotency-Key": "order-42"})
    # Same content, different key order and spacing: still the same request.
    body = valid_dispatch()
    reordered = {"workflow": body["workflow"], "template": "failover"}
    second = await gw.post(reordered, auth=basic(), **{"Idempotency-Key": "order-42"})
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    (event,) = gw.event_log.appended
    assert isinstance(event, WorkflowRequested)
    assert event.idempotency_key == "order-42"
    assert event.request_hash


async def test_same_key_different_body_is_422(gw: Gateway) -> None:
    assert (await gw.post(auth=basic(), **{"Idempotency-Key": "k"})).status_code == 202
    other = valid_dispatch()
    other["workflow"][1]["message"]["content"]["text"] = "something else"
    problem = assert_problem(await gw.post(other, auth=basic(), **{"Idempotency-Key": "k"}), 422)
    assert problem["invalid_parameters"][0]["name"] == "Idempotency-Key"
    assert len(gw.event_log.appended) == 1


async def test_keys_are_per_application(gw: Gateway) -> None:
    a = await gw.post(auth=basic(), **{"Idempotency-Key": "k"})
    b = await gw.post(auth=basic("key-2"), **{"Idempotency-Key": "k"})
    assert a.json() != b.json()
    assert len(gw.event_log.appended) == 2


async def test_a_failed_write_can_be_retried_with_the_same_key(gw: Gateway) -> None:
    gw.event_log.available = False
    assert_problem(await gw.post(auth=basic(), **{"Idempotency-Key": "k"}), 503)
    gw.event_log.available = True
    assert (await gw.post(auth=basic(), **{"Idempotency-Key": "k"})).status_code == 202
    assert len(gw.event_log.appended) == 1


async def test_an_unusable_idempotency_key_is_422(gw: Gateway) -> None:
    problem = assert_problem(await gw.post(auth=basic(), **{"Idempotency-Key": "x" * 300}), 422)
    assert problem["invalid_parameters"][0]["name"] == "Idempotency-Key"


# -- operations --------------------------------------------------------------------
async def test_health_readiness_and_metrics(gw: Gateway) -> None:
    assert (await gw.client.get("/healthz")).status_code == 200
    assert (await gw.client.get("/readyz")).status_code == 200
    gw.event_log.available = False
    assert_problem(await gw.client.get("/readyz"), 503)
    gw.event_log.available = True
    gw.registry.loaded = False
    assert_problem(await gw.client.get("/readyz"), 503)
    await gw.post(auth=basic())
    text = (await gw.client.get("/metrics")).text
    assert (
        'dispatch_gateway_requests_total{method="POST",route="/v0.1/dispatch",status="202"}' in text
    )
    assert "dispatch_gateway_produce_seconds" in text


async def test_openapi_document_is_served(gw: Gateway) -> None:
    document = (await gw.client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")


async def test_dispatches_are_accepted_and_counted_under_a_root_path_too() -> None:
    # POST /v0.1/dispatch is served ahead of Starlette's layers; under a root
    # path it goes through them: the same answer, counted the same way.
    accepted = REQUESTS.labels("/v0.1/dispatch", "POST", "202")
    for root_path in ("", "/api"):
        registry = FakeRegistry(make_app())
        event_log = FakeEventLog()
        deps = GatewayDeps(settings=GatewaySettings(), applications=registry, event_log=event_log)
        transport = httpx.ASGITransport(app=create_app(deps), root_path=root_path)
        before = accepted._value.get()
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            response = await client.post(
                f"{root_path}/v0.1/dispatch",
                content=orjson.dumps(valid_dispatch()),
                headers={"Content-Type": "application/json", "Authorization": basic()},
            )
        assert response.status_code == 202, (root_path, response.text)
        (event,) = event_log.appended
        assert str(event.dispatch_uuid) == response.json()["dispatch_uuid"]
        assert accepted._value.get() == before + 1
