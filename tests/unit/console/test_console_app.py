"""The console's HTTP surface over a real store, SQLite and PostgreSQL (no
broker): sign-in, refusals a user can read, the pages' content and the
figures on /metrics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from events.topics import Topics
from projections.store import open_store
from services.console import auth
from services.console.app import create_app
from services.console.charts import bars, sparkline
from services.console.figures import lateness_buckets, quantile_from_buckets
from services.console.settings import ConsoleSettings
from services.kafka import KafkaSettings
from services.settings import SettingsError
from tests.fixtures_events import failover_history
from tests.unit.projections.test_console_queries import project

TOKEN = "operator-token-0123456789"


@pytest.fixture
async def dispatch_uuid(store_url: str) -> str:
    store = await open_store(store_url)
    dispatch = uuid.uuid4()
    await project(store, failover_history(dispatch, "app-a"))
    await store.close()
    return str(dispatch)


@pytest.fixture
async def client(store_url: str, dispatch_uuid: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = ConsoleSettings(
        token=TOKEN,
        projector_store_url=store_url,
        kafka=KafkaSettings(
            bootstrap_servers="127.0.0.1:1", partitions=1, topics=Topics.from_prefix("")
        ),
        processor_metrics_url=None,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as c:
        yield c
    await app.state.store.close()


async def signed_in(client: httpx.AsyncClient) -> httpx.AsyncClient:
    response = await client.post(
        "/console/login", data={"token": TOKEN, "next": "/console/dispatches"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/dispatches"
    return client


async def test_a_browser_is_sent_to_sign_in_and_a_script_gets_a_problem(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/console/dispatches", headers={"accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"] == "/console/login?next=%2Fconsole%2Fdispatches"
    script = await client.get("/console/dispatches")
    assert script.status_code == 401
    assert script.headers["content-type"] == "application/problem+json"
    assert "operator token" in script.json()["detail"]


async def test_a_wrong_token_is_refused_and_the_right_one_opens_the_console(
    client: httpx.AsyncClient,
) -> None:
    wrong = await client.post("/console/login", data={"token": "an-api-key-perhaps"})
    assert wrong.status_code == 401
    assert "not the console" in wrong.text
    await signed_in(client)
    assert (await client.get("/console/dispatches")).status_code == 200


async def test_sign_in_never_sends_the_browser_to_another_site(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/console/login", data={"token": TOKEN, "next": "//evil.example/x"}
    )
    assert response.headers["location"] == "/console"


async def test_a_bearer_token_works_for_scripts(client: httpx.AsyncClient) -> None:
    ok = await client.get("/console/dispatches", headers={"authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    bad = await client.get("/console/dispatches", headers={"authorization": "Bearer nope"})
    assert bad.status_code == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=lost", "status"),
        ("channel=pigeon", "channel"),
        ("since=yesterday", "since"),
        ("q=not*a*uuid", "q"),
        ("before=somewhere", "before"),
    ],
)
async def test_a_bad_filter_is_a_problem_naming_the_field(
    client: httpx.AsyncClient, query: str, field: str
) -> None:
    response = await (await signed_in(client)).get(f"/console/dispatches?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    [named] = response.json()["invalid_parameters"]
    assert named["name"] == field and named["reason"]


async def test_the_list_and_the_dispatch_page_show_the_dispatch(
    client: httpx.AsyncClient, dispatch_uuid: str
) -> None:
    await signed_in(client)
    listed = await client.get(
        "/console/dispatches?application=app-a&failed_over=1&channel=whatsapp"
    )
    assert dispatch_uuid in listed.text
    assert (await client.get("/console/dispatches?status=error")).text.count(dispatch_uuid) == 0
    page = await client.get(f"/console/dispatches/{dispatch_uuid}")
    assert page.status_code == 200
    for expected in ("StepTimedOut", "kind-failover", "final webhook delivered", "m-1"):
        assert expected in page.text
    assert (await client.get(f"/console/dispatches/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/console/dispatches/not-a-uuid")).status_code == 404


async def test_the_overview_and_metrics_give_the_same_figures(client: httpx.AsyncClient) -> None:
    overview = await (await signed_in(client)).get("/console")
    assert overview.status_code == 200
    assert "Failovers by reason" in overview.text
    metrics = (await client.get("/metrics")).text
    assert 'dispatch_projection_dispatches_finished_total{status="completed"} 1.0' in metrics
    assert 'dispatch_projection_failovers_total{reason="timed_out"} 1.0' in metrics
    assert "dispatch_projection_dispatches_in_flight 0.0" in metrics


def test_the_console_will_not_start_without_a_real_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSOLE_TOKEN", "short")
    with pytest.raises(SettingsError, match="CONSOLE_TOKEN must be set") as refused:
        ConsoleSettings.from_env()
    assert "short" not in str(refused.value)  # a secret is never echoed


def test_a_session_expires_and_cannot_be_forged() -> None:
    cookie = auth.new_session(TOKEN, now=1000)
    assert auth.session_valid(cookie, TOKEN, now=1000 + 60)
    assert not auth.session_valid(cookie, TOKEN, now=1000 + auth.SESSION_S + 1)
    assert not auth.session_valid(cookie, "another-token-0123456", now=1000)
    expires = cookie.partition(".")[0]
    assert not auth.session_valid(f"{int(expires) + 999}.{cookie.partition('.')[2]}", TOKEN, 1000)


def test_lateness_p99_is_read_from_the_histogram_buckets() -> None:
    text = (
        "# TYPE dispatch_timer_lateness_seconds histogram\n"
        'dispatch_timer_lateness_seconds_bucket{le="0.5"} 90.0\n'
        'dispatch_timer_lateness_seconds_bucket{le="1.0"} 99.0\n'
        'dispatch_timer_lateness_seconds_bucket{le="2.0"} 100.0\n'
        'dispatch_timer_lateness_seconds_bucket{le="+Inf"} 100.0\n'
        "dispatch_timer_lateness_seconds_count 100.0\n"
        "dispatch_timer_lateness_seconds_sum 30.0\n"
    )
    buckets = lateness_buckets(text)
    assert quantile_from_buckets(buckets, 0.99) == 1.0
    assert quantile_from_buckets(buckets, 0.5) == 0.5
    assert quantile_from_buckets([(1.0, 0.0)], 0.99) is None


def test_charts_scale_to_the_tallest_value() -> None:
    drawn = bars([("a", 1), ("b", 4), ("c", 0)], width=30, height=40)
    assert [b.height for b in drawn] == [10, 40, 0]
    assert sparkline([0, 1], width=10, height=10) == "0.0,8.0 10.0,2.0"
