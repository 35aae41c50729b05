"""Built-in training tasks: seeded generators of sequences with their own sizes and heads."""

from __future__ import annotations

from typing import Any


def describe_tasks() -> list[dict[str, Any]]:
    """Name, title, description and default parameters of every task."""
    return []
