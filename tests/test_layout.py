"""The layout holds: no import circles (module-level or inside functions), the engine is Slack-free, and
only the gateway talks to Google or Kubernetes."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "checks")
# transports and clients: only checks/gateway/ may use them (google.cloud/google.iam types are facts' types)
NETWORK = ("kubernetes", "requests", "urllib3", "google.auth", "google.api_core")


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = path
    return out


def imports(path: Path, name: str) -> set[str]:
    """Every module this file imports, anywhere in it (function-level imports included)."""
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    out = {}
    for name, path in mods.items():
        out[name] = {m for m in imports(path, name) if m in mods and m != name}
    return out


def test_no_import_circles():
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(g[n]):
            if m.startswith(n + ".") or n.startswith(m + "."):
                continue  # a package and its own modules
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2
    for n in sorted(g):
        if n not in state:
            visit(n)
    assert cycles == [], "import circles: " + "; ".join(" → ".join(c) for c in cycles)


def test_the_engine_is_slack_free_and_only_the_gateway_calls_out():
    bad = []
    for name, path in modules().items():
        if not name.startswith("checks"):
            continue
        for m in imports(path, name):
            if m.startswith(("bot", "slack_sdk", "slack_bolt")):
                bad.append(f"{name} imports {m}")
            if not name.startswith("checks.gateway") and m.startswith(NETWORK):
                bad.append(f"{name} imports {m}")
    assert bad == []
