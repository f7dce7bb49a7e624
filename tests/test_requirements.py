"""Hosts install requirements.lock with --require-hashes: it pins exactly requirements.txt."""

import re

from tests.conftest import ROOT

PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s\\;]+)")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[_normalise(match.group(1))] = match.group(2)
    return pins


def test_the_lock_pins_exactly_the_requirements():
    assert _pins(ROOT / "requirements.lock") == _pins(ROOT / "requirements.txt")


def test_every_locked_package_carries_a_hash():
    entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text())
    locked = [entry for entry in entries if PIN.match(entry)]
    assert locked
    for entry in locked:
        assert "--hash=sha256:" in entry, entry.splitlines()[0]
