"""The cluster exists in the project and location it was asked for.

A 404 from `gcloud container` or the Kubernetes Engine API most often means the name, project or
location is not the cluster's: a zonal cluster asked for under its region (or the reverse), the
wrong project in `gcloud config`, or a typo. The check looks the cluster up where it was asked for;
when it is not there, it searches every location of the project (or of every project in
GKE_BOT_PROJECTS) for the closest names and gives the exact `gcloud container clusters
get-credentials` command for each. When the bot may not list clusters somewhere, that is an ERROR
naming the permission, never a "not found".
"""
from __future__ import annotations

import re

from checks.i18n import N_, _, sentences
from checks.resolve import ClusterSpec, resolve

ID = "gke/cluster-lookup"
TITLE = N_("Cluster exists where it was asked for")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors"
COMMANDS = ("why-404",)
ORDER = 25
SEED = "001 エラー 404: リソースが見つからない"
CLUSTER_LEVEL = False


def credentials_command(ref) -> str:
    return f"gcloud container clusters get-credentials {ref.name} --location={ref.location} --project={ref.project}"


def _api_disabled(err) -> str:
    """The project whose Kubernetes Engine API is disabled, per this error, or ''."""
    m = re.search(r"projects/([^/\s]+)", err.call)
    return m.group(1) if m and err.code == 403 and "it is disabled" in err.message else ""


def run(ctx):
    ref = ctx.ref
    asked = "/".join(p for p in (ref.project, ref.location, ref.name) if p)
    res = ctx.args.get("resolution") or resolve(ctx.gw, ClusterSpec(ref.name, ref.location, ref.project),
                                               (ref.project,) if ref.project else ())
    if res.ref is not None:
        return ctx.ok(_("`{cluster}` exists. If a command still answers 404, fetch credentials for exactly this "
                        "cluster: `{command}`").format(cluster=res.ref.path, command=credentials_command(res.ref)),
                      resource=res.ref.path)
    out = []
    for err in res.errors:
        if err.not_found:
            continue
        if project := _api_disabled(err):
            out.append(ctx.fail(_("The Kubernetes Engine API is disabled in project `{project}`, so no cluster can be "
                                  "found there.").format(project=project),
                                f"```\ngcloud services enable container.googleapis.com --project {project}\n```",
                                evidence=err.explain(), resource=f"projects/{project}"))
        else:
            out.append(ctx.error(err, resource=asked))
    first, _sep, errors = res.message.partition("\n")  # the resolver's answer, then one line per API error
    cmds = "\n".join(credentials_command(c) for c in res.candidates)
    ambiguous = len(res.candidates) > 1 and all(c.name == ref.name for c in res.candidates)
    if ambiguous:
        return out + [ctx.warn(_("`{name}` exists in more than one place: {clusters}. Name the one you mean.").format(
                                   name=ref.name, clusters=", ".join(f"`{c.path}`" for c in res.candidates)),
                               f"```\n{cmds}\n```", evidence=errors, resource=asked)]
    if out and not res.not_found:  # the lookup itself failed: the errors say it all
        return out
    projects = [ref.project] if ref.project else ["PROJECT_ID"]
    if cmds:
        remedy = _("Did you mean one of these?\n```\n{commands}\n```").format(commands=cmds)
    else:
        remedy = _("List the clusters you can see:\n```\n{commands}\n```").format(
            commands="\n".join(f"gcloud container clusters list --project {p}" for p in projects))
    report = ctx.warn if out else ctx.fail  # where the bot could not look, it cannot say "not found"
    detail = first or _("No cluster `{cluster}`.").format(cluster=asked)
    if out:
        detail = sentences(detail, _("The bot could not search everywhere (see the errors)."))
    return out + [report(detail, remedy, evidence=errors, resource=asked)]
