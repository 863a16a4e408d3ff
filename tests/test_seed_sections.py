"""Every check's SEED names sections that exist in the seed it cites.

SEED is "NNN HEADING[; HEADING…]", optionally ending in " (N)" for the N-th item of a numbered list in
that section. The seeds' headings are kept in tests/fixtures/seed_sections.txt (their table of contents).
"""
from __future__ import annotations

import re
from pathlib import Path

from checks.registry import CHECKS

TOC = Path(__file__).resolve().parent / "fixtures" / "seed_sections.txt"


def headings() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in TOC.read_text().splitlines():
        if line and not line.startswith("#"):
            number, _, heading = line.partition(" ")
            out.setdefault(number, set()).add(heading)
    return out


def test_seed_sections_exist():
    toc = headings()
    cited = [(c.id, c.seed) for c in CHECKS.values() if c.seed]
    assert len(cited) >= 10
    for check_id, seed in cited:
        number, _, sections = seed.partition(" ")
        assert number in toc, f"{check_id}: no seed {number}"
        for section in re.sub(r" \(\d+\)$", "", sections).split("; "):
            assert section in toc[number], f"{check_id}: {section!r} is not a section of seed {number}"


def test_a_wrong_section_is_caught():
    toc = headings()
    assert "エラー 400: ノードプールの再作成が必要" in toc["001"]
    assert "エラー 400: ノードプールの再作成" not in toc["001"]


def test_gcpdiag_ids_look_like_gcpdiag_rules():
    """Lint rules (`gke/ERR/2021_007`) or runbooks (`lb/unhealthy-backends`)."""
    for check in CHECKS.values():
        if check.gcpdiag.startswith("gke/"):
            assert re.fullmatch(r"gke/(ERR|WARN|BP|SEC|BP_EXT)/\d{4}_\d{3}", check.gcpdiag), check.id
        elif check.gcpdiag:
            assert re.fullmatch(r"[a-z]+/[a-z0-9-]+(/[a-z0-9-]+)*", check.gcpdiag), check.id


def test_readme_cross_reference_table_is_current():
    from checks.registry import markdown_table
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start, end = readme.index("<!-- checks-table -->\n"), readme.index("<!-- /checks-table -->")
    assert readme[start + len("<!-- checks-table -->\n"):end].strip() == markdown_table(), \
        "README's checks table is out of date: python -m checks.registry"


def test_every_check_names_its_seed_section():
    assert [c.id for c in CHECKS.values() if not c.seed] == []
