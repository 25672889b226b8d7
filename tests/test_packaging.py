"""The lock (requirements*.txt, what `make` installs and the suite runs with) and the ranges in
pyproject.toml (what installing mmaux elsewhere accepts) name the same packages, and every locked
version lies inside its range."""
from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent


def _locked(name: str) -> dict[str, str]:
    pins = {}
    for line in (REPO / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"{name}: {line} is not an exact pin"
            pins[requirement.name.lower()] = spec.version
    return pins


def _ranges(requirements: list[str]) -> dict[str, Requirement]:
    return {Requirement(r).name.lower(): Requirement(r) for r in requirements}


def test_every_locked_version_lies_in_its_pyproject_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for lock, ranges in (("requirements.txt", project["dependencies"]),
                         ("requirements-test.txt", project["optional-dependencies"]["test"])):
        pins, wanted = _locked(lock), _ranges(ranges)
        assert set(pins) == set(wanted), f"{lock} and pyproject.toml name different packages"
        for name, version in pins.items():
            assert wanted[name].specifier.contains(version), f"{name}=={version} ({lock}) is outside {wanted[name]}"


def test_the_project_metadata_points_at_the_readme():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["readme"] == "README.md" and project["scripts"]["mmaux"] == "mmaux.cli:main"
