"""``dispatch secrets generate``: a fresh random secret, owner-only, never
printed, never overwritten; read back through ``NAME_FILE``."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import main
from services.secret_env import env_secret


def test_generates_once_owner_only_and_never_prints_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run" / "secret"
    first = CliRunner().invoke(main, ["secrets", "generate", str(path)])
    assert first.exit_code == 0, first.output
    secret = path.read_text().strip()
    assert len(secret) >= 43  # 32 random bytes, URL-safe base64
    assert secret not in first.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    again = CliRunner().invoke(main, ["secrets", "generate", str(path)])
    assert again.exit_code == 0
    assert path.read_text().strip() == secret  # kept: both sides keep agreeing

    monkeypatch.delenv("INBOUND_SIGNATURE_SECRET", raising=False)
    monkeypatch.setenv("INBOUND_SIGNATURE_SECRET_FILE", str(path))
    assert env_secret("INBOUND_SIGNATURE_SECRET") == secret
