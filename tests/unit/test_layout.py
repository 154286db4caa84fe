"""The tree stays the architecture: dependencies point down, modules stay small.

Layers, lowest first: actors; settings, net and calls; observability, ai and fleet;
twilio; admin and simulator; process (the composition root) and the CLI. A module imports only
from its own subsystem and the layers below it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMPORT = re.compile(r"^\s*(?:from|import) (gateway|actors)((?:\.\w+)*)", re.M)
MAY_IMPORT = {
    "settings": set(),
    "net": set(),
    "calls": set(),
    "observability": {"calls", "settings"},
    "ai": {"net", "settings"},
    "fleet": {"calls", "settings"},
    "twilio": {"calls", "net", "observability", "settings"},
    "admin": {"calls", "fleet", "settings", "twilio"},
    "simulator": {"net", "settings", "twilio"},
}
LONG_DATA_TABLES = {"gateway/observability/log_schema.py"}


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imports(path: Path) -> set[tuple[str, str]]:
    """(top package, first subpackage or '') of every gateway/actors import in `path`."""
    found = set()
    for top, rest in IMPORT.findall(path.read_text()):
        found.add((top, rest.split(".")[1] if rest else ""))
    return found


def test_actors_never_import_the_gateway():
    offenders = [path for path in sources("actors") if any(top == "gateway" for top, _ in imports(path))]
    assert offenders == []


@pytest.mark.parametrize("subsystem", sorted(MAY_IMPORT))
def test_a_subsystem_imports_only_the_layers_below_it(subsystem):
    allowed = MAY_IMPORT[subsystem] | {subsystem}
    wrong = {
        f"{path.relative_to(ROOT)} imports gateway.{sub}"
        for path in sources(f"gateway/{subsystem}")
        for top, sub in imports(path)
        if top == "gateway" and sub not in allowed
    }
    assert wrong == set()


def test_only_the_entry_points_sit_directly_in_gateway():
    assert sorted(path.name for path in (ROOT / "gateway").glob("*.py")) == [
        "__init__.py",
        "__main__.py",
        "cli.py",
    ]


def test_no_module_is_longer_than_a_reader_holds_in_their_head():
    long = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for package in ("actors", "gateway")
        for path in sources(package)
        if len(path.read_text().splitlines()) > 450 and str(path.relative_to(ROOT)) not in LONG_DATA_TABLES
    }
    assert long == {}
