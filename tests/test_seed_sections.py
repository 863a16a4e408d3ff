"""Every check's SEED names sections that exist in the seed it cites ("NNN heading; heading")."""
from __future__ import annotations

from pathlib import Path

import pytest

from checks.registry import CHECKS

SEEDS = Path("/work/shared/seeds")


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seeds are not on this machine")
def test_seed_sections_exist():
    cited = [(c.id, c.seed) for c in CHECKS.values() if c.seed]
    assert len(cited) >= 10
    for check_id, seed in cited:
        number, _, sections = seed.partition(" ")
        (path,) = SEEDS.glob(f"{number}_*.txt")
        headings = {line.strip() for line in path.read_text().splitlines()}
        for section in sections.split("; "):
            assert section in headings, f"{check_id}: {section!r} is not a section of {path.name}"


def test_gcpdiag_ids_look_like_gcpdiag_rules():
    """Lint rules (`gke/ERR/2021_007`) or runbooks (`lb/unhealthy-backends`)."""
    import re
    for check in CHECKS.values():
        if check.gcpdiag.startswith("gke/"):
            assert re.fullmatch(r"gke/(ERR|WARN|BP|SEC|BP_EXT)/\d{4}_\d{3}", check.gcpdiag), check.id
        elif check.gcpdiag:
            assert re.fullmatch(r"[a-z]+/[a-z0-9-]+(/[a-z0-9-]+)*", check.gcpdiag), check.id
