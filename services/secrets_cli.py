"""``dispatch secrets generate FILE...``: a random secret in each file,
readable by its owner only, left alone when it exists (compose runs it before
the processes, which read the files through ``*_FILE``)."""

from __future__ import annotations

import os
import secrets as random_secrets
from pathlib import Path

import click


@click.group("secrets")
def secrets() -> None:
    """Generate secrets for a deployment."""


@secrets.command("generate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def generate(paths: tuple[Path, ...]) -> None:
    """Write a random 256-bit secret to each PATH (mode 0600) unless it exists."""
    for path in paths:
        if path.exists():
            click.echo(f"{path} exists; kept")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(random_secrets.token_urlsafe(32) + "\n")
        click.echo(f"wrote a new secret to {path}")  # never the secret itself
