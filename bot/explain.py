"""Reading a pasted error for `/gke explain`, `@gke-bot explain …` and the message shortcut *Diagnose this error*.

Pure: no Slack, no Google. The text is untrusted; checks.explain recognises it and validates every value it
takes from it. What happens with a reading:

1. `read(text)`: the error recognised, the cluster typed before it (`/gke explain europe-west4/payments …`)
   or named in it, or a bare first word that may be a cluster name (`/gke explain payments …`: only a
   cluster when the binding has one of that name; else the whole text is the error).
2. The access policy decides as for a typed command (bot.access.Gate.explain): the recognised command, the
   project, and the principal the error names, which is used only when the asker is an approver (others
   are diagnosed as themselves, and the answer says so).
3. `settle(reading, listed)`: when no cluster is known, the clusters of the binding's projects (listed by the
   worker) decide: one is used as is; several make a picker; a bare first word matching one is that one.
4. `command(rec, cluster, principal)`: the typed command it stands for, validated by the grammar again.
"""
from __future__ import annotations

from dataclasses import dataclass

from bot.grammar import Command, parse
from checks.explain import Recognition, recognize, split_leading_cluster
from checks.model import ClusterRef
from checks.resolve import ClusterSpec

# arguments the grammar has no words for, passed to the checks as they are (validated by checks.explain)
EXTRA_ARGS = {"why-400": ("pool",), "why-403": ("permission", "resource")}
# recognised kinds whose why-403 permission/resource describe a "Retry budget exhausted" error (checks/rules/
# retry_budget.py reads them); for any other kind they name what the *asker* lacks and must not reach that check
RETRY_BUDGET_KINDS = ("retry-budget-exhausted",)


@dataclass(frozen=True)
class Reading:
    rec: Recognition | None  # the error (after a first word that may be a cluster, when there is one)
    cluster: ClusterSpec | None = None  # typed before the error, or named by it
    candidate: ClusterSpec | None = None  # a bare first word: a cluster only if the binding has one of that name
    whole: Recognition | None = None  # the whole text read as the error (when the candidate is no cluster)

    @property
    def recognised(self) -> bool:
        return self.rec is not None

    @property
    def project(self) -> str:
        """The project the text or the typed cluster names ("" when none): the access policy checks it."""
        if self.cluster and self.cluster.project:
            return self.cluster.project
        return self.rec.project if self.rec else ""

    def needs_listing(self) -> bool:
        """The cluster is not known yet: the worker lists the binding's clusters (settle)."""
        return self.rec is not None and self.cluster is None


def read(text: str) -> Reading:
    """What the pasted text says. `rec` is None when nothing in it is recognised."""
    lead, rest = split_leading_cluster(text)
    if lead is None:
        rec = recognize(text)
        return Reading(rec, rec.cluster if rec else None)
    if lead.location or lead.project:  # LOCATION/NAME or PROJECT/LOCATION/NAME: the asker named the cluster
        rec = recognize(rest) or recognize(text)
        return Reading(rec.with_cluster(lead) if rec else None, lead if rec else None)
    rec, whole = recognize(rest), recognize(text)
    if rec is None:
        return Reading(whole, whole.cluster if whole else None)
    if rec.cluster is not None:  # the error itself names the cluster
        return Reading(rec, rec.cluster)
    return Reading(rec, None, lead, whole)


def _spec(ref: ClusterRef) -> ClusterSpec:
    return ClusterSpec(ref.name, ref.location, ref.project)


def _in(ref: ClusterRef, spec: ClusterSpec) -> bool:
    return ref.name == spec.name and spec.location in ("", ref.location) and spec.project in ("", ref.project)


def _near(ref: ClusterRef, location: str) -> bool:
    """A cluster in or under the location the text names (a zone of a named region, or the reverse)."""
    return ref.location == location or ref.location.startswith(location + "-") or location.startswith(ref.location + "-")


def settle(reading: Reading, listed: list[ClusterRef]) -> tuple[Recognition, ClusterSpec | None, list[ClusterRef]]:
    """(the recognition to run, its cluster or None, the clusters to choose from when None) given the clusters
    of the binding's projects."""
    rec = reading.rec
    assert rec is not None
    if reading.cluster is not None:
        return rec, reading.cluster, []
    if reading.candidate is not None:
        hits = [r for r in listed if r.name == reading.candidate.name]
        if len(hits) == 1:
            spec = _spec(hits[0])
            return rec.with_cluster(spec), spec, []
        if hits:
            return rec, None, hits  # that name in several places: the asker picks
        rec = reading.whole or rec  # the first word is no cluster here: the whole text is the error
        if rec.cluster is not None:
            return rec, rec.cluster, []
    pool = [r for r in listed if not rec.project or r.project == rec.project]
    if rec.location:
        pool = [r for r in pool if _near(r, rec.location)] or pool
    named = [r for r in pool if any(_in(r, c) for c in rec.clusters)]
    pool = named or pool
    if len(pool) == 1:
        spec = _spec(pool[0])
        return rec.with_cluster(spec), spec, []
    return rec, None, pool


def command(rec: Recognition, cluster: ClusterSpec, principal: str) -> Command:
    """The typed command the recognition stands for, parsed by the grammar (so every value passes its rules),
    with the arguments the grammar has no words for (why-400's node pool, a Retry budget error's permission)."""
    line = rec.command_line(cluster, principal)
    if not line:
        raise ValueError(f"{rec.kind}: arguments missing ({', '.join(rec.missing)})")
    cmd = parse(line)
    extra = EXTRA_ARGS.get(rec.command, ())
    if rec.command == "why-403" and rec.kind not in RETRY_BUDGET_KINDS:
        extra = ()
    for key in extra:
        if isinstance(rec.args.get(key), str) and rec.args[key]:
            cmd.args[key] = rec.args[key]
    return cmd
