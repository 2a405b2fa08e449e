"""Small SVG charts drawn on the server (no script, nothing fetched)."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 240
HEIGHT = 48


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


def bars(values: list[tuple[str, float]], width: int = WIDTH, height: int = HEIGHT) -> list[Bar]:
    """One bar per (label, value), scaled so the tallest fills the height."""
    if not values:
        return []
    top = max(v for _, v in values) or 1
    step = width / len(values)
    drawn = []
    for i, (label, value) in enumerate(values):
        h = height * value / top
        drawn.append(Bar(x=i * step, y=height - h, width=max(step - 1, 1), height=h, label=label))
    return drawn


def sparkline(values: list[float], width: int = WIDTH, height: int = HEIGHT) -> str:
    """The ``points`` of an SVG polyline through the values, oldest on the left."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (height - 4) * v / top:.1f}" for i, v in enumerate(values)
    )
