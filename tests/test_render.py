"""Block Kit rendering of the finding model, checked against golden files and Block Kit limits.

Regenerate the golden files after an intended change with GKE_BOT_UPDATE_GOLDEN=1 pytest tests/test_render.py.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from bot.render import blocks as render
from checks.model import Finding, Remediation, Report, Status

GOLDEN = Path(__file__).parent / "golden"


def sample_report() -> Report:
    return Report("why-403", "projects/p-1/locations/europe-west4/clusters/c-1", [
        Finding("gke/service-agent-role", Status.FAIL, "GKE service agent has roles/container.serviceAgent",
                detail="The GKE service agent `serviceAccount:service-1@x` lacks `roles/container.serviceAgent`.",
                remedy="```\ngcloud projects add-iam-policy-binding p-1 --member \"serviceAccount:service-1@x\" "
                       "--role roles/container.serviceAgent\n```",
                doc_url="https://cloud.google.com/kubernetes-engine/docs/troubleshooting",
                resource="projects/p-1", evidence="no binding in `gcloud projects get-iam-policy p-1`",
                remediation=Remediation("grant_service_agent", "Re-grant roles/container.serviceAgent",
                                        "Add one binding", {"project": "p-1"})),
        Finding("gke/api-enabled", Status.OK, "Kubernetes Engine API is enabled", detail="enabled"),
        Finding("gke/rbac", Status.ERROR, "RBAC allows the principal", detail="`subjectaccessreviews.create` failed: 503"),
        Finding("gke/skew", Status.WARN, "Node pools match the control plane", detail="pool-1 is 1.27 <b>&",
                remedy="upgrade"),
    ])


def golden(name: str, data) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    if os.environ.get("GKE_BOT_UPDATE_GOLDEN") or not path.exists():
        path.write_text(text)
    assert text == path.read_text(), f"rendering changed; see {path}"


def test_report_blocks_match_golden():
    golden("report_why403", render.report_messages(sample_report(), plans={0: "plan-abc"}))


def test_help_matches_golden():
    golden("help", render.help_blocks())


def test_problems_come_first_and_oks_are_compact():
    [msg] = render.report_messages(sample_report())
    texts = [json.dumps(b) for b in msg["blocks"]]
    fail = next(i for i, t in enumerate(texts) if "[FAIL]" in t)
    err = next(i for i, t in enumerate(texts) if "[ERROR]" in t)
    ok = next(i for i, t in enumerate(texts) if "Kubernetes Engine API is enabled" in t)
    assert fail < err < ok
    assert "&lt;b&gt;&amp;" in json.dumps(msg["blocks"])  # escaped finding text


def test_long_reports_split_at_50_blocks_and_3000_chars():
    findings = [Finding(f"c/{i}", Status.FAIL, f"title {i}", detail="x" * 4000 + "\n" + "y" * 2500,
                        remedy="```\n" + "z\n" * 1600 + "```") for i in range(30)]
    messages = render.report_messages(Report("doctor", "projects/p/locations/l/clusters/c", findings))
    assert len(messages) > 1
    for m in messages:
        assert 1 <= len(m["blocks"]) <= 50
        for b in m["blocks"]:
            if b["type"] == "section":
                assert 0 < len(b["text"]["text"]) <= 3000
                assert b["text"]["text"].count("```") % 2 == 0
    alltext = "".join(b["text"]["text"] for m in messages for b in m["blocks"] if b["type"] == "section")
    assert alltext.count("x") >= 30 * 4000  # nothing lost in the split


def test_button_text_limit():
    f = Finding("c", Status.WARN, "t", remediation=Remediation("upgrade_node_pool", "Upgrade " + "p" * 100, "s", {}))
    block = render.remediation_actions(f, "id")
    assert len(block["elements"][0]["text"]["text"]) == 75


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_escaped_text_never_forms_a_mention_link_or_broadcast(text):
    out = render.escape(text)
    assert "<" not in out and ">" not in out
    assert render.escape("<!channel>") == "&lt;!channel&gt;"
    # escaping is reversible: nothing the user typed is lost
    assert out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=600))
def test_code_span_cannot_be_broken_out_of(text):
    out = render.code(text)
    assert out.startswith("`") and out.endswith("`") and out.count("`") == 2
    assert "<" not in out[1:-1] and ">" not in out[1:-1]


@pytest.mark.parametrize("user", ["U123", "W0ABC"])
def test_mentions_only_for_real_user_ids(user):
    assert render.mention(user) == f"<@{user}>"
    assert render.mention("<!channel>") == "someone"
    assert render.mention("U12|x") == "someone"
