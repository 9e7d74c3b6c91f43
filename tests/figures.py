"""Figures measured by the fault, load and fuzz tests, reported at the end of the run.

Tests call :func:`record` with one row per scenario. ``conftest.py`` prints
every table in pytest's terminal summary and writes them to
``build/test-figures.md``, so a run's numbers can be quoted as they were
measured. Figures are reported, never asserted as timings.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["FIGURES_PATH", "record", "render", "write"]

FIGURES_PATH = Path(__file__).resolve().parent.parent / "build" / "test-figures.md"

_TABLES: dict[str, list[dict[str, str]]] = {}


def record(table: str, **row: object) -> None:
    """Add one row to ``table``; columns are the keyword names, in order."""
    _TABLES.setdefault(table, []).append({key: str(value) for key, value in row.items()})


def render() -> str:
    """Every table recorded so far, as Markdown."""
    parts: list[str] = []
    for title, rows in _TABLES.items():
        columns = list(dict.fromkeys(key for row in rows for key in row))
        lines = [f"### {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(row.get(column, "") for column in columns) + " |" for row in rows]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def write() -> Path | None:
    """Write the tables to :data:`FIGURES_PATH`; ``None`` when nothing was recorded."""
    if not _TABLES:
        return None
    FIGURES_PATH.parent.mkdir(parents=True, exist_ok=True)
    FIGURES_PATH.write_text(render() + "\n")
    return FIGURES_PATH


def tables() -> dict[str, list[dict[str, str]]]:
    """Every table recorded so far (a copy), e.g. for a pytest-xdist worker to hand to the controller."""
    return {title: list(rows) for title, rows in _TABLES.items()}


def merge(more: dict[str, list[dict[str, str]]]) -> None:
    """Add the rows another process recorded (a pytest-xdist worker's)."""
    for title, rows in more.items():
        _TABLES.setdefault(title, []).extend(rows)
