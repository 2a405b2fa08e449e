"""``dispatch apps ...``"""

from __future__ import annotations

import click


@click.group()
def apps() -> None:
    """Manage applications (credentials and webhook URLs)."""
