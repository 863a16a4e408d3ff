"""Find the cluster a user means: NAME, LOCATION/NAME or PROJECT/LOCATION/NAME."""
from __future__ import annotations

import contextvars
import difflib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from checks.gateway import ApiError, Gateway
from checks.i18n import N_, _, sentences
from checks.model import ClusterRef


@dataclass(frozen=True)
class ClusterSpec:
    """What the user typed, validated but not yet looked up."""

    name: str
    location: str = ""
    project: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.project, self.location, self.name) if p)


@dataclass
class Resolution:
    ref: ClusterRef | None = None
    message: str = ""  # why there is no ref: not found (with suggestions), ambiguous, API error
    candidates: list[ClusterRef] = field(default_factory=list)
    errors: list[ApiError] = field(default_factory=list)
    refused: bool = False  # the project is outside the allowlist: nothing was looked up
    not_found: bool = False  # the search ran: no cluster of that name there (message: with suggestions)


# user-facing English of the resolution (N_: translated where used)
OUTSIDE = N_("Project `{project}` is not one I may look at from here, so I did not look it up. Here you may ask "
             "about: {allowed}.")
NOTHING_ALLOWED = N_("No project may be asked about from here (GKE_BOT_PROJECTS or the access policy is empty).")


def _suggest(name: str, refs: list[ClusterRef]) -> list[ClusterRef]:
    names = {r.name for r in refs}
    close = difflib.get_close_matches(name, sorted(names), n=3, cutoff=0.6)
    return [r for n in close for r in refs if r.name == n]


def _refs(clusters, project: str) -> list[ClusterRef]:
    return [ClusterRef(project, c.location, c.name) for c in clusters]


def resolve(gw: Gateway, spec: ClusterSpec, projects: tuple[str, ...], strict: bool = False) -> Resolution:
    """Find the cluster. strict: `projects` is an allowlist (every Slack path): another project is refused
    before any request, and names are searched and suggested only inside the allowlist. Without it (the
    terminal, with the user's own credentials) a named project is looked at as well."""
    if strict and not projects:
        return Resolution(message=_(NOTHING_ALLOWED), refused=True)
    if strict and spec.project and spec.project not in projects:
        return Resolution(message=_(OUTSIDE).format(project=spec.project,
                                                 allowed=", ".join(f"`{p}`" for p in projects)), refused=True)
    if spec.project and spec.location:
        ref = ClusterRef(spec.project, spec.location, spec.name)
        try:
            gw.cluster(ref)
            return Resolution(ref=ref)
        except ApiError as err:
            if not err.not_found:
                return Resolution(message=_("Could not look up `{cluster}`: {error}").format(
                    cluster=ref.path, error=err.explain()), errors=[err])
        search = [spec.project]
    else:
        search = [spec.project] if spec.project else list(projects)
    if not search:
        return Resolution(message=_("No project to search: name it as `PROJECT/LOCATION/NAME` or `--project P`, or "
                                    "set GKE_BOT_PROJECTS."))
    # Suggestions come from every configured project too, not only the one named.
    listed = search + [p for p in projects if p not in search]

    def listing(project: str):
        try:
            return project, gw.clusters(project), None
        except ApiError as err:
            return project, [], err

    with ThreadPoolExecutor(max_workers=min(8, len(listed))) as pool:  # the reader's language goes along
        results = list(pool.map(lambda p: contextvars.copy_context().run(listing, p), listed))
    every: list[ClusterRef] = []
    errors = [err for project, _clusters, err in results if err and project in search]
    for project, clusters, _err in results:
        every.extend(_refs(clusters, project))
        for c in clusters:  # a listing returns whole clusters: no need to GET them again
            gw.seed(("cluster", ClusterRef(project, c.location, c.name).path), c)
    matches = [r for r in every if r.project in search and r.name == spec.name
               and (not spec.location or r.location == spec.location)]
    if len(matches) == 1:
        return Resolution(ref=matches[0], errors=errors)
    if len(matches) > 1:
        listed_refs = ", ".join(f"`{r.project}/{r.location}/{r.name}`" for r in matches)
        return Resolution(message=_("`{name}` exists in more than one place: {clusters}. Which one? Name it as "
                                    "PROJECT/LOCATION/NAME.").format(name=spec.name, clusters=listed_refs),
                          candidates=matches, errors=errors)
    where = ", ".join(f"`{p}`" for p in search)
    msg = _("No cluster `{cluster}` in {projects}.").format(cluster=spec, projects=where)
    near = [r for r in every if r.name == spec.name] or _suggest(spec.name, every)
    if near:
        msg = sentences(msg, _("Did you mean {clusters}?").format(
            clusters=_(" or ").join(f"`{r.project}/{r.location}/{r.name}`" for r in near)))
    for err in errors:
        msg += f"\n• {err.explain()}"
    return Resolution(message=msg, candidates=near, errors=errors, not_found=True)
