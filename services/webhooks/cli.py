"""``dispatch webhooks ...``"""

from __future__ import annotations

import click


@click.group()
def webhooks() -> None:
    """Inspect and redeliver webhooks."""
