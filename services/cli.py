"""The ``dispatch`` command line: applications, webhooks, audit and replay."""

from __future__ import annotations

import click

from projections.cli import audit, replay
from services.applications.cli import apps
from services.demo import demo
from services.secrets_cli import secrets
from services.webhooks.cli import webhooks


@click.group()
def main() -> None:
    """Operate a Dispatch deployment."""


main.add_command(apps)
main.add_command(webhooks)
main.add_command(audit)
main.add_command(replay)
main.add_command(demo)
main.add_command(secrets)
