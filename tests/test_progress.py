"""Progress on the parent message while a diagnosis runs (real serve + worker; slow Google)."""
from __future__ import annotations

import re

import pytest

from bot.config import ConfigError, Settings

from tests.conftest import serve_with
from tests.test_e2e import post
from tests.test_edge import final_parent

DONE = re.compile(r"checking… (\d+) of (\d+) checks done")


def test_a_slow_diagnosis_shows_checks_done_on_the_parent(spawn, env, redis_url, slack, google):
    served = serve_with(spawn, env, redis_url, GKE_BOT_PROGRESS_SECONDS="0.2")
    google.latency = 0.15
    post(served, "doctor gke1", trigger="slow-1")
    parent = final_parent(slack)
    google.latency = 0.0
    texts = [e["text"] for e in parent["edits"]] + [parent["text"]]
    shown = [tuple(map(int, m.groups())) for t in texts if (m := DONE.search(t))]
    assert shown, texts
    assert all(0 < done < total for done, total in shown)
    assert len(set(shown)) == len(shown)  # an update only when the count changed
    assert [d for d, _ in shown] == sorted(d for d, _ in shown)
    assert not DONE.search(parent["text"]) and "OK" in parent["text"]  # the summary replaced it



@pytest.mark.parametrize("name,value", [("GKE_BOT_PROGRESS_SECONDS", "0"), ("GKE_BOT_PROGRESS_SECONDS", "soon"),
                                        ("GKE_BOT_RECHECK_WAIT", "-1"), ("GKE_BOT_RECHECK_WAIT", "nan"),
                                        ("GKE_BOT_RECHECK_TRIES", "0")])
def test_bad_timing_settings_stop_the_process_with_one_line(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
