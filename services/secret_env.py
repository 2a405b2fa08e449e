"""Secrets from the environment: ``NAME`` itself, or the contents of the file
named by ``NAME_FILE`` (how compose and k8s hand secrets over without putting
them in a process listing or a manifest)."""

from __future__ import annotations

import os
from pathlib import Path


def env_secret(name: str) -> str:
    """``$NAME``, else the stripped contents of ``$NAME_FILE``, else empty."""
    value = os.environ.get(name, "")
    if value:
        return value
    path = os.environ.get(f"{name}_FILE", "")
    return Path(path).read_text().strip() if path else ""
