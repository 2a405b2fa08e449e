"""The ``dispatch`` command line: applications, webhooks, audit and replay."""

from __future__ import annotations

import click

from services.applications.cli import apps
from services.webhooks.cli import webhooks


@click.group()
def main() -> None:
    """Operate a Dispatch deployment."""


main.add_command(apps)
main.add_command(webhooks)
