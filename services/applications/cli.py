"""``dispatch apps ...``: register applications on the compacted
``dispatch.applications`` topic."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from aiokafka.errors import KafkaError

from events.applications import ApplicationRegistered
from events.codec import to_json
from services.applications import lifecycle
from services.applications.credentials import generate_credentials, hash_secret
from services.applications.lifecycle import UnknownApplication
from services.applications.register import publish_application
from services.applications.sealing import SealingError
from services.kafka import KafkaSettings


def _http_url(_ctx: click.Context, param: click.Parameter, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{value!r} is not an absolute http(s) URL", param=param)
    return value


def _public_key(path: Path | None) -> str | None:
    if path is None:
        return None
    pem = path.read_text()
    # Refuse anything but a public key now, rather than 401s later.
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise click.BadParameter(f"{path} is not a PEM public key: {exc}") from exc
    if not isinstance(key, RSAPublicKey):
        raise click.BadParameter(f"{path} is not an RSA public key (JWTs are RS256)")
    return pem


@click.group()
def apps() -> None:
    """Manage applications (credentials and webhook URLs)."""


@apps.command("create")
@click.option("--name", required=True, help="A name for people.")
@click.option("--status-url", required=True, callback=_http_url, help="Status webhook URL.")
@click.option(
    "--final-report-url", required=True, callback=_http_url, help="Final report webhook URL."
)
@click.option(
    "--public-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM RSA public key; enables Bearer JWT (RS256) authentication.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as one JSON object.")
def create(
    name: str,
    status_url: str,
    final_report_url: str,
    public_key_file: Path | None,
    as_json: bool,
) -> None:
    """Register an application and print its credentials.

    The API secret is printed once and stored only as a salted hash.
    """
    credentials = generate_credentials()
    app = ApplicationRegistered(
        application_id=credentials.application_id,
        name=name,
        api_key=credentials.api_key,
        api_secret_hash=hash_secret(credentials.api_secret),
        status_url=status_url,
        final_report_url=final_report_url,
        public_key_pem=_public_key(public_key_file),
        signature_secret=credentials.signature_secret,
    )
    try:
        asyncio.run(publish_application(KafkaSettings.from_env(), app))
    except SealingError as exc:
        raise click.ClickException(str(exc)) from exc
    except (TimeoutError, OSError, KafkaError) as exc:
        raise click.ClickException(f"could not register the application on Kafka: {exc!r}") from exc
    shown = {
        "application_id": credentials.application_id,
        "name": name,
        "api_key": credentials.api_key,
        "api_secret": credentials.api_secret,
        "signature_secret": credentials.signature_secret,
    }
    if as_json:
        click.echo(to_json(shown).decode())
        return
    for field, value in shown.items():
        click.echo(f"{field:17} {value}")
    click.echo("The api_secret is shown only now; store it safely.", err=True)


def _run(operation: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.run(operation)
    except (UnknownApplication, SealingError) as exc:
        raise click.ClickException(str(exc)) from exc
    except (TimeoutError, OSError, KafkaError) as exc:
        raise click.ClickException(f"could not reach the registry on Kafka: {exc!r}") from exc


@apps.command("rotate-secret")
@click.argument("application_id")
@click.option(
    "--signature-secret",
    "signature",
    is_flag=True,
    help="Rotate the webhook signature secret instead of the API secret.",
)
def rotate_secret(application_id: str, signature: bool) -> None:
    """Issue a new API secret (or signature secret) and print it once.

    The old one stops working within seconds: update your clients first
    (Bearer JWT clients are not affected by an API secret rotation).
    """
    settings = KafkaSettings.from_env()
    if signature:
        secret = generate_credentials().signature_secret
        _run(lifecycle.update(settings, application_id, signature_secret=secret))
        click.echo(f"signature_secret {secret}")
        return
    secret = generate_credentials().api_secret
    _run(lifecycle.update(settings, application_id, api_secret_hash=hash_secret(secret)))
    click.echo(f"api_secret {secret}")
    click.echo("The api_secret is shown only now; store it safely.", err=True)


@apps.command("add-key")
@click.argument("application_id")
@click.option("--kid", required=True, help="Key id: the JWT header's kid selects this key.")
@click.option(
    "--public-key-file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM RSA public key.",
)
def add_key(application_id: str, kid: str, public_key_file: Path) -> None:
    """Add a JWT verification key; the others stay valid (an overlap)."""
    pem = _public_key(public_key_file)

    async def add() -> None:
        settings = KafkaSettings.from_env()
        app = await lifecycle.current(settings, application_id)
        await lifecycle.update(settings, application_id, public_keys={**app.public_keys, kid: pem})

    _run(add())
    click.echo(f"key {kid} added to {application_id}")


@apps.command("remove-key")
@click.argument("application_id")
@click.option("--kid", required=True, help="The key id to remove ('default': the create key).")
def remove_key(application_id: str, kid: str) -> None:
    """Remove a JWT verification key; tokens it signed stop working within seconds."""

    async def remove() -> None:
        settings = KafkaSettings.from_env()
        app = await lifecycle.current(settings, application_id)
        if kid == "default" and app.public_key_pem:
            await lifecycle.update(settings, application_id, public_key_pem=None)
            return
        if kid not in app.public_keys:
            raise UnknownApplication(f"{application_id} has no key {kid!r}")
        keys = {k: v for k, v in app.public_keys.items() if k != kid}
        await lifecycle.update(settings, application_id, public_keys=keys)

    _run(remove())
    click.echo(f"key {kid} removed from {application_id}")


@apps.command("revoke")
@click.argument("application_id")
def revoke(application_id: str) -> None:
    """Revoke an application: every credential stops working within seconds."""
    _run(lifecycle.revoke(KafkaSettings.from_env(), application_id))
    click.echo(f"{application_id} revoked")
