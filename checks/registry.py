"""The registry of checks: every module in `checks.rules` that defines ID is a check.

A check module (gcpdiag style) has:
- a docstring whose first line states the good state and whose body explains the check;
- ID (stable, e.g. ``gke/service-agent-role``), TITLE (one line), DOC_URL;
- COMMANDS: the diagnosis commands that run it, in the order given by ORDER (lower first);
- optionally SEED (the seed section it implements, e.g. "001 エラー 400: ノードプールの再作成が必要") and
  GCPDIAG (the gcpdiag rule it matches, e.g. "gke/ERR/2021_007"; findings carry it);
- ``run(ctx) -> Finding | list[Finding]``.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from checks import rules

COMMANDS = ("why-403", "why-401", "why-400", "why-404", "wi", "rbac", "ingress", "doctor")


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    doc_url: str
    description: str
    commands: tuple[str, ...]
    order: int
    run: Callable
    cluster_level: bool
    seed: str = ""
    gcpdiag: str = ""

    @classmethod
    def from_module(cls, mod: ModuleType) -> "Check":
        doc = (mod.__doc__ or "").strip()
        cmds = tuple(mod.COMMANDS)
        unknown = set(cmds) - set(COMMANDS)
        if unknown:
            raise ValueError(f"{mod.__name__}: unknown commands {sorted(unknown)}")
        return cls(mod.ID, mod.TITLE, mod.DOC_URL, doc, cmds, getattr(mod, "ORDER", 50), mod.run,
                   getattr(mod, "CLUSTER_LEVEL", True), getattr(mod, "SEED", ""), getattr(mod, "GCPDIAG", ""))


def _load() -> dict[str, Check]:
    found: dict[str, Check] = {}
    for info in pkgutil.iter_modules(rules.__path__):
        mod = importlib.import_module(f"{rules.__name__}.{info.name}")
        if not hasattr(mod, "ID"):
            continue
        chk = Check.from_module(mod)
        if chk.id in found:
            raise ValueError(f"duplicate check id {chk.id}")
        found[chk.id] = chk
    return found


CHECKS: dict[str, Check] = _load()


def for_command(command: str) -> list[Check]:
    """Checks of a command, in their stable order. `doctor` runs every cluster-level check: those that
    need no asker, Kubernetes service account or Ingress (CLUSTER_LEVEL = False marks the others)."""
    if command == "doctor":
        chosen = [c for c in CHECKS.values() if c.cluster_level]
    else:
        chosen = [c for c in CHECKS.values() if command in c.commands]
    return sorted(chosen, key=lambda c: (c.order, c.id))


def markdown_table() -> str:
    """The README's cross-reference: every check, the commands that run it, its seed section, its gcpdiag rule."""
    rows = ["| check | commands | seed section | gcpdiag rule |", "|---|---|---|---|"]
    for c in sorted(CHECKS.values(), key=lambda c: (COMMANDS.index(c.commands[0]) if c.commands else 99,
                                                       c.order, c.id)):
        seed = c.seed.replace("|", "\\|")
        rows.append(f"| `{c.id}` | {', '.join(c.commands)} | {seed} | {f'`{c.gcpdiag}`' if c.gcpdiag else ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
