"""The dependency floors stay above releases with known vulnerabilities, and
what ``make install`` put in this environment is exactly the hashed lock."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]

# The last vulnerable release of each: the floor must refuse it.
KNOWN_VULNERABLE = {
    "aiohttp": "3.14.2",  # CVE-2026-69244 (fixed 3.14.3); CVE-2026-69243 (3.14.2)
    "starlette": "1.5.0",  # CVE-2026-54282/54283 (fixed 1.6.0); CVE-2026-48710 (1.0.1)
    "pyjwt": "2.14.0",  # CVE-2026-101918 (fixed 2.15.0); CVE-2026-32597 (2.12.0)
}
LOCKS = ("requirements.lock", "requirements-dev.lock")
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def _project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project: dict[str, object] = tomllib.load(f)["project"]
    return project


def _dependencies(dev: bool) -> list[Requirement]:
    project = _project()
    names = list(project["dependencies"])  # type: ignore[call-overload]
    if dev:
        names += project["optional-dependencies"]["dev"]  # type: ignore[index]
    return [Requirement(n) for n in names]


def _pins(lock: str) -> dict[str, tuple[str, str | None, int]]:
    """name → (version, marker, number of hashes) for every pin in ``lock``."""
    pins: dict[str, tuple[str, str | None, int]] = {}
    current = None
    for line in (ROOT / lock).read_text().splitlines():
        if match := PIN.match(line):
            current = canonicalize_name(match[1])
            pins[current] = (match[2], match[3], 0)
        elif "--hash=sha256:" in line and current is not None:
            version, marker, hashes = pins[current]
            pins[current] = (version, marker, hashes + 1)
    return pins


@pytest.mark.parametrize(("name", "vulnerable"), sorted(KNOWN_VULNERABLE.items()))
def test_floors_refuse_known_vulnerable_releases(name: str, vulnerable: str) -> None:
    (requirement,) = [r for r in _dependencies(dev=False) if canonicalize_name(r.name) == name]
    assert not requirement.specifier.contains(vulnerable, prereleases=True), requirement


@pytest.mark.parametrize("lock", LOCKS)
def test_every_dependency_is_pinned_with_hashes_within_its_range(lock: str) -> None:
    pins = _pins(lock)
    for name, (_version, _marker, hashes) in pins.items():
        assert hashes >= 1, f"{lock}: {name} has no hash"
    for requirement in _dependencies(dev=lock == "requirements-dev.lock"):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} lacks {name}"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (
            f"{lock}: {name}=={pins[name][0]} is outside {requirement.specifier}"
        )
    for name, vulnerable in KNOWN_VULNERABLE.items():
        assert Requirement(f"{name}>{vulnerable}").specifier.contains(pins[name][0])


def test_this_environment_was_installed_from_the_lock() -> None:
    """``make install`` installs the hashed pins: every locked package that
    applies to this interpreter is installed at exactly its locked version."""
    mismatched = []
    for name, (version, marker, _) in _pins("requirements-dev.lock").items():
        if marker is not None and not Marker(marker).evaluate():
            continue
        installed = metadata.version(name)
        if installed != version:
            mismatched.append(f"{name}: locked {version}, installed {installed}")
    assert not mismatched, mismatched
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in makefile
