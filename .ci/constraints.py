#!/usr/bin/env python3
"""Write constraints.txt: every distribution that `pip install '.[test]'` needs, pinned at the version
installed in this environment.

    pip install -e '.[test]'              # or: pip install -U -e '.[test]' to move to newer releases
    python .ci/constraints.py > constraints.txt

`--check` instead exits 1 (naming them) when a requirement of pyproject.toml, or one of theirs, has no
pin in constraints.txt. Only the standard library and `packaging` (a dependency of pip's world and
of the test extra) are used, so it runs before the project is installed.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import sys
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("test",)
HEADER = """\
# Pinned versions of every distribution gke-bot and its test extra install (the whole dependency
# closure), used by CI (.ci/run) and by the container image (Dockerfile): `pip install -c constraints.txt`.
# Regenerate after changing dependencies in pyproject.toml:
#   pip install -e '.[test]' && python .ci/constraints.py > constraints.txt
# (pip install -U -e '.[test]' first to move to the newest releases.)
"""


def top_level() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project.get("dependencies", [])]
    for extra in EXTRAS:
        reqs += [Requirement(r) for r in project.get("optional-dependencies", {}).get(extra, [])]
    return reqs


def closure(reqs: list[Requirement]) -> dict[str, str]:
    """{canonical name: installed version} of reqs and everything they require (markers honoured)."""
    env = default_environment()
    pins: dict[str, str] = {}
    todo = [(r, frozenset()) for r in reqs]
    seen: set[tuple[str, frozenset]] = set()
    while todo:
        req, extras = todo.pop()
        if req.marker and not any(req.marker.evaluate({**env, "extra": e}) for e in (extras or {""})):
            continue
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            sys.exit(f"constraints: {req.name} is not installed; run pip install -e '.[test]' first")
        pins[name] = dist.version
        for sub in dist.requires or []:
            todo.append((Requirement(sub), frozenset(req.extras)))
    pins.pop(canonicalize_name("gke-bot"), None)
    return pins


def pinned(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            out[canonicalize_name(req.name)] = str(req.specifier)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with constraints.txt instead of printing")
    args = ap.parse_args()
    pins = closure(top_level())
    if args.check:
        have = pinned(ROOT / "constraints.txt")
        missing = sorted(set(pins) - set(have))
        if missing:
            print(f"constraints.txt pins nothing for: {', '.join(missing)} (see its header)", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(HEADER + "".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
