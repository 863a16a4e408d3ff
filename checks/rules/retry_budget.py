"""The service account the cluster uses holds the permission GKE reported missing ("Retry budget exhausted").

Creating a cluster (or its nodes) can fail with `Error: googleapi: Error 403: Retry budget exhausted:
Google Compute Engine: Required permission 'PERMISSION_NAME' for 'RESOURCE_NAME'.` (PERMISSION_NAME
such as compute.regions.get; RESOURCE_NAME the path of the Google Cloud resource GKE tried to use, such
as a Compute Engine region). It means the IAM service account associated with the cluster lacks a
permission the cluster needs at least. The check takes the permission and resource from the error (given
as args `permission` and `resource`, or `error` with the whole text, e.g. by `/gke explain`), or else
from the cluster's recent failed operations, and checks the named permission on the service account the
cluster uses (its node pools' accounts; the Compute Engine default service account when the cluster does
not exist yet, as GKE would use it), through the account's bindings on the resource's project. The seed
gives two fixes: create or modify a service account with every permission a GKE cluster needs (least
privilege) and name it with `--service-account`; or omit `--service-account` so that GKE uses the
Compute Engine default service account, which has the required permissions by default (Editor).
Grants inherited from folders, the organization or groups are not visible to the check.
"""
from __future__ import annotations

import re

from checks import operations as opsmod
from checks.accounts import (DELETED, NODE_PERMISSIONS, NODE_ROLE, account_problem, compute_default_sa, least_privilege_commands,
                             least_privilege_sa, node_accounts)
from checks.gateway import ApiError
from checks.i18n import N_, _
from checks.iam import grant_command, granted, has_role, prefetch_roles, sa_project

ID = "gke/retry-budget"
TITLE = N_("The cluster's service account holds the permissions GKE needs")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors"
COMMANDS = ("why-403",)
ORDER = 36
SEED = "001 エラー 403: リトライ バジェットが残っていない"
EDITOR = "roles/editor"
EXTRA_ROLE = "gkeNodesExtra"  # the custom role suggested for a permission the node role does not include


def _given(args: dict) -> list[dict]:
    perm, res = args.get("permission"), args.get("resource")
    text = args.get("error") or ""
    if not perm and (m := opsmod.RETRY_BUDGET_RE.search(text)):
        perm, res = m.group(1), m.group(2)
    if not perm:
        return []
    return [{"permission": perm, "resource": res or "", "quote": text.strip(), "op": None}]


def _from_operations(ops, ref) -> tuple[list[dict], int]:
    recent = opsmod.recent(ops, ref)
    found, seen = [], set()
    for op in recent:
        if not opsmod.failed(op):
            continue
        error = opsmod.error_text(op)
        for m in opsmod.RETRY_BUDGET_RE.finditer(error):
            if (m.group(1), m.group(2)) not in seen:
                seen.add((m.group(1), m.group(2)))
                found.append({"permission": m.group(1), "resource": m.group(2), "quote": error, "op": op})
    return found, len(recent)


def _accounts(ctx, number: str, cluster, report: dict) -> dict[str, list[str]]:
    if cluster is None:
        return {compute_default_sa(number): [_("a cluster `{cluster}` created without `--service-account`").format(
            cluster=ctx.ref.name)]}
    accounts = node_accounts(cluster, number)
    pool = opsmod.pool_of(report["op"]) if report["op"] else ""
    if pool:
        mine = {e: p for e, p in accounts.items() if pool in p}
        return mine or {compute_default_sa(number): [
            _("node pool `{pool}` (created without `--service-account`)").format(pool=pool)]}
    return accounts


def run(ctx):
    ref, gw = ctx.ref, ctx.gw
    reports = _given(ctx.args)
    # Everything the answer may need, at once (shared with the other why-403 checks through the memo).
    number, cluster, node_role, _policy, ops = gw.parallel(
        lambda: gw.project_number(ref.project), lambda: _cluster(ctx), lambda: gw.role(NODE_ROLE),
        lambda: gw.project_iam_policy(ref.project),
        lambda: None if reports else gw.operations(ref.project, ref.location))
    if not reports:
        reports, read = _from_operations(ops, ref)
        if not reports:
            return ctx.ok(_("No recent operation on `{cluster}` failed with \"Retry budget exhausted\" ({count} "
                            "operation(s) of the last {days} days read), and no such error was given.").format(
                cluster=ref.name, count=read, days=opsmod.RECENT_DAYS))
    node_perms = set((node_role or {}).get("includedPermissions") or NODE_PERMISSIONS)
    out = []
    for report in reports:
        m = re.match(r"(?://[^/]+/)?projects/([^/]+)/", report["resource"] or "")
        res_project = m.group(1) if m else ref.project
        policy = gw.project_iam_policy(res_project)
        accounts = _accounts(ctx, number, cluster, report)
        gw.parallel(lambda: prefetch_roles(gw, policy, [f"serviceAccount:{e}" for e in accounts]),
                    *[lambda e=e: _quietly(gw.service_account, e, sa_project(e, ref.project)) for e in accounts])
        for email, users in accounts.items():
            out.append(_one(ctx, report, res_project, policy, email, users, number, node_perms))
    return out


def _quietly(fn, *args):
    try:
        return fn(*args)
    except ApiError:
        return None  # memoised: reported where the answer is used


def _one(ctx, report, res_project, policy, email, users, number, node_perms):
    ref = ctx.ref
    perm, resource = report["permission"], report["resource"] or f"projects/{res_project}"
    member = f"serviceAccount:{email}"
    used = ", ".join(users)
    if report["op"]:
        source = _("operation `{operation}` failed with `{error}`").format(operation=report["op"].name,
                                                                          error=opsmod.quoted(report["quote"]))
    else:
        source = _("GKE answered `{error}`").format(
            error=f"Retry budget exhausted: Google Compute Engine: Required permission '{perm}' for '{resource}'")
    problem = account_problem(ctx, email, sa_project(email, ref.project))
    if problem:
        kind, remedy, evidence = problem
        what = (_("The service account of {users}, `{account}` does not exist: it was deleted. So it holds no "
                  "permission at all ({source}).") if kind == DELETED else
                _("The service account of {users}, `{account}` is disabled. So it holds no permission at all "
                  "({source})."))
        return ctx.fail(what.format(users=used, account=email, source=source),
                        remedy, evidence=evidence, resource=f"projects/{sa_project(email, ref.project)}/"
                                                             f"serviceAccounts/{email}")
    perms, roles, notes = granted(ctx.gw, policy, member)
    held = ", ".join(f"`{r}`" for r in roles) or _("no unconditional role")
    command = f"gcloud projects get-iam-policy {res_project} --flatten=bindings --filter=bindings.members:{member}"
    if perm in perms:
        evidence = (_("`{command}` gives {roles}; also {notes}: `{permission}` is among their permissions.") if notes
                    else _("`{command}` gives {roles}: `{permission}` is among their permissions."))
    else:
        evidence = (_("`{command}` gives {roles}; also {notes}: `{permission}` is not among their permissions.")
                    if notes else _("`{command}` gives {roles}: `{permission}` is not among their permissions."))
    evidence = evidence.format(command=command, roles=held, notes=", ".join(notes), permission=perm)
    if perm in perms:
        via = [r for r in roles if perm in ((ctx.gw.role(r) or {}).get("includedPermissions") or [])]
        return ctx.ok(
            _("`{account}` (the service account of {users}) holds `{permission}` on project `{project}` now (through "
              "{roles}), which {source} reported missing: retry the operation. If it fails again, an IAM deny policy "
              "or an organization policy may withhold the permission.").format(
                account=email, users=used, permission=perm, project=res_project,
                roles=", ".join(f"`{r}`" for r in via), source=source),
            evidence=evidence, resource=f"projects/{res_project}")
    default = compute_default_sa(number)
    is_default = email == default
    extra = perm not in node_perms
    target_sa = least_privilege_sa(ref.project) if is_default else email
    target = f"serviceAccount:{target_sa}"
    extra_cmds = (f"gcloud iam roles create {EXTRA_ROLE} --project {res_project} \\\n"
                  f"    --title \"GKE nodes: extra permissions\" --permissions={perm}\n"
                  + grant_command(res_project, target, f"projects/{res_project}/roles/{EXTRA_ROLE}")) if extra else ""
    if is_default:
        step1 = _("Create a least-privilege service account with every permission a GKE cluster needs:\n```\n"
                  "{commands}\n```\n").format(
            commands=least_privilege_commands(ref.project) + (f"\n{extra_cmds}" if extra else ""))
    else:
        node = "" if NODE_ROLE in granted(ctx.gw, policy, target)[1] else grant_command(ref.project, target, NODE_ROLE)
        step1 = (_("Give the service account every permission a GKE cluster needs (the node role, and `{permission}` "
                   "through a custom role):\n```\n{commands}\n```\n") if extra else
                 _("Give the service account every permission a GKE cluster needs (the node role):\n```\n"
                   "{commands}\n```\n")).format(permission=perm,
                                                 commands="\n".join(x for x in (node, extra_cmds) if x))
    create = (f"gcloud container clusters create {ref.name} --location={ref.location} --project={ref.project} \\\n"
              f"    --service-account={target_sa}")
    default_state = has_role(ctx.gw.project_iam_policy(ref.project), f"serviceAccount:{default}", EDITOR)
    if default_state and not default_state.condition:
        default_note = _("it holds `{role}` on the project now.").format(role=EDITOR)
    else:
        default_note = _("it no longer holds `{role}` here, so grant it back first:\n```\n{command}\n```").format(
            role=EDITOR, command=grant_command(ref.project, f"serviceAccount:{default}", EDITOR))
    remedy = _("*1. A least-privilege service account, named with `--service-account`.* {step}and name it when "
               "creating the cluster (or node pool: `{pool_command}`):\n```\n{command}\n```\n").format(
        step=step1, command=create,
        pool_command=f"gcloud container node-pools create POOL --cluster={ref.name} … --service-account={target_sa}")
    if is_default:
        remedy += _("*2. Or keep the Compute Engine default service account* (omit `--service-account`): it has the "
                    "required permissions by default; {default_note}").format(default_note=default_note)
    else:
        remedy += _("*2. Or omit `--service-account`:* GKE then uses the Compute Engine default service account "
                    "`{account}`, which has the required permissions by default; {default_note}").format(
            account=default, default_note=default_note)
    return ctx.fail(
        _("`{account}` (the service account of {users}) lacks `{permission}` on project `{project}`, needed for "
          "`{resource}`: {source}. The IAM service account associated with the cluster lacks a permission the "
          "cluster needs at least. (Grants inherited from folders, the organization or groups are not visible to "
          "the bot.)").format(account=email, users=used, permission=perm, project=res_project, resource=resource,
                              source=source),
        remedy, evidence=evidence, resource=f"projects/{res_project}")


def _cluster(ctx):
    try:
        return ctx.gw.cluster(ctx.ref)
    except ApiError as err:
        if err.not_found:
            return None  # not created (yet): GKE would use the Compute Engine default service account
        raise
