"""Shared IAM-permission analysis: what may a principal do on a project or a cluster, and why.

`project_access` reads the project's IAM policy, keeps the bindings that name the principal
(directly, or through `allUsers`, `allAuthenticatedUsers` or `domain:`), and expands each role to its
permissions with IAM `roles.get` (role definitions are cached across jobs by the gateway).
`cluster_access` answers "does the principal hold PERMISSION on this cluster?": first with Policy
Troubleshooter v3 (which sees inherited folder/organization allow policies and IAM deny policies), else with
`project_access` (which says that deny policies were not evaluated). Both are memoised per job, so every check that asks shares one answer.
"""
from __future__ import annotations

import contextvars
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from checks.gateway import ApiError, Gateway
from checks.i18n import N_, _
from checks.iam import Binding, bindings
from checks.model import ClusterRef

CLUSTER_GET = "container.clusters.get"
# The smallest predefined role that grants each permission the checks ask about.
SMALLEST_ROLE = {CLUSTER_GET: "roles/container.clusterViewer"}
VIEWER_ROLE = "roles/container.viewer"  # read access to every Kubernetes object, through IAM
LOCAL_LIMITS = N_("Group membership and policies inherited from folders and the organization cannot be seen "
                  "locally: access that comes through a Google group or a folder/organization binding is not "
                  "shown here.")
NO_PRINCIPAL = N_("I do not know which Google account is yours: add `--as user:EMAIL`.")
# Policy Troubleshooter's words for the outcomes; the local analysis uses the same ones.
GRANTED, CONDITIONAL, NOT_GRANTED = "GRANTED", "UNKNOWN_CONDITIONAL", "NOT_GRANTED"


def email_of(principal: str) -> str:
    return principal.partition(":")[2] or principal


def full_cluster_name(ref: ClusterRef) -> str:
    return f"//container.googleapis.com/{ref.path}"


def members_for(principal: str) -> set[str]:
    """Policy members that include `principal` without group expansion."""
    out = {principal, "allUsers"}
    if not principal.startswith("group:"):
        out.add("allAuthenticatedUsers")
    if principal.startswith("user:"):
        out.add("domain:" + principal.rpartition("@")[2])
    return out


def describe(b: Binding, where: str = "") -> str:
    """`roles/x` on `projects/p` (condition 'title'), for people."""
    if where and b.condition:
        return _("`{role}` on `{resource}` (condition '{condition}')").format(role=b.role, resource=where,
                                                                            condition=b.condition)
    if where:
        return _("`{role}` on `{resource}`").format(role=b.role, resource=where)
    if b.condition:
        return _("`{role}` (condition '{condition}')").format(role=b.role, condition=b.condition)
    return f"`{b.role}`"


@dataclass
class ProjectAccess:
    """The bindings of one project's IAM policy that name a principal, with their roles' permissions."""

    project: str
    principal: str
    bindings: list[Binding]
    role_permissions: dict[str, frozenset[str] | None]  # None: the role no longer exists
    unreadable: dict[str, ApiError] = field(default_factory=dict)  # roles the bot could not read
    deleted: frozenset[str] = frozenset()  # custom roles marked `"deleted": true`: they grant nothing

    @property
    def resource(self) -> str:
        return f"projects/{self.project}"

    def granting(self, permission: str, conditional: bool = False) -> list[Binding]:
        """Bindings whose role includes `permission`: unconditional ones, or only conditional ones."""
        return [b for b in self.bindings if bool(b.condition) == conditional
                and permission in (self.role_permissions.get(b.role) or ())]

    def permissions(self) -> dict[str, list[Binding]]:
        """Every permission the unconditional bindings grant, with the bindings that grant it."""
        out: dict[str, list[Binding]] = {}
        for b in self.bindings:
            if not b.condition:
                for perm in self.role_permissions.get(b.role) or ():
                    out.setdefault(perm, []).append(b)
        return out

    def missing_roles(self) -> list[str]:
        return sorted(r for r, perms in self.role_permissions.items() if perms is None)


def role_grants(definition: dict | None) -> frozenset[str] | None:
    """The permissions a role definition grants: None when the role does not exist, nothing when it is a
    custom role marked deleted (IAM keeps it, with its permissions listed, for 7 days; it grants none)."""
    if definition is None:
        return None
    return frozenset() if definition.get("deleted") else frozenset(definition.get("includedPermissions") or ())


def project_access(gw: Gateway, project: str, principal: str) -> ProjectAccess:
    """Memoised per job: the project's bindings for `principal`, expanded to permissions."""
    def build() -> ProjectAccess:
        wanted = members_for(principal)
        found = [b for b in bindings(gw.project_iam_policy(project)) if wanted.intersection(b.members)]
        roles = sorted({b.role for b in found})
        perms: dict[str, frozenset[str] | None] = {}
        errors: dict[str, ApiError] = {}
        deleted: set[str] = set()

        def fetch(role: str):
            try:
                definition = gw.role(role)
            except ApiError as err:
                errors[role] = err
                return
            perms[role] = role_grants(definition)
            if definition and definition.get("deleted"):
                deleted.add(role)
        if roles:
            with ThreadPoolExecutor(max_workers=min(8, len(roles)), thread_name_prefix="roles") as pool:
                list(pool.map(lambda r: contextvars.copy_context().run(fetch, r), roles))
        return ProjectAccess(project, principal, found, perms, errors, frozenset(deleted))
    return gw.memo(("project_access", project, principal), build)


@dataclass(frozen=True)
class Verdict:
    """Whether a principal holds a permission on a resource, who says so, and through what."""

    principal: str
    permission: str
    resource: str  # full resource name
    access: str  # GRANTED | UNKNOWN_CONDITIONAL | NOT_GRANTED
    via: tuple[str, ...] = ()  # granting bindings, for people
    conditional: tuple[str, ...] = ()  # conditional bindings that would grant it
    source: str = ""  # "Policy Troubleshooter" or "the project IAM policy" (SOURCE_LOCAL, translated)
    fallback: str = ""  # why Policy Troubleshooter was not used ("" when it was), a sentence for people
    local: ProjectAccess | None = None
    denied_by: tuple[str, ...] = ()  # deny policies (rules) that deny the permission, for people
    deny_note: str = ""  # why deny policies were not (fully) evaluated ("" when they were)

    @property
    def granted(self) -> bool:
        return self.access == GRANTED


# Policy Troubleshooter v3 has no permission of its own: it explains what its caller may read.
TROUBLESHOOTER_NEEDS = N_(
    "Policy Troubleshooter answered {code} {status}: the bot needs the Policy Troubleshooter API enabled, and on the "
    "organization the permissions of Security Reviewer (`roles/iam.securityReviewer`: "
    "`resourcemanager.projects.getIamPolicy`, `resourcemanager.folders.getIamPolicy`, "
    "`resourcemanager.organizations.getIamPolicy`, `iam.roles.get`, `iam.roles.list`) and of Deny Reviewer "
    "(`roles/iam.denyReviewer`: `iam.denypolicies.get`, `iam.denypolicies.list`); IAM deny policies were not "
    "evaluated.")
TROUBLESHOOTER = "Policy Troubleshooter"
SOURCE_LOCAL = N_("the project IAM policy")
_ALLOW_STATES = {"ALLOW_ACCESS_STATE_GRANTED": GRANTED, "ALLOW_ACCESS_STATE_NOT_GRANTED": NOT_GRANTED,
                 "ALLOW_ACCESS_STATE_UNKNOWN_CONDITIONAL": CONDITIONAL}


def _troubleshooter_verdict(gw: Gateway, principal: str, resource: str,
                            permission: str) -> Verdict | tuple[str, bool]:
    """Policy Troubleshooter v3's Verdict (allow and deny policies), or why it could not give one (and whether
    that says deny policies were not evaluated)."""
    if principal.startswith("group:"):
        return _("Policy Troubleshooter only checks Google accounts and service accounts, not groups."), False
    try:
        resp = gw.troubleshoot(principal, resource, permission)
    except ApiError as err:
        return _(TROUBLESHOOTER_NEEDS).format(code=err.code, status=err.status), True
    allow = resp.get("allowPolicyExplanation") or {}
    deny = resp.get("denyPolicyExplanation") or {}
    overall = resp.get("overallAccessState", "")
    allow_access = _ALLOW_STATES.get(allow.get("allowAccessState", ""), "")
    deny_state = deny.get("denyAccessState", "")
    deny_note = ""
    if deny_state in ("DENY_ACCESS_STATE_UNKNOWN_INFO", "", "DENY_ACCESS_STATE_UNSPECIFIED"):
        deny_note = _("IAM deny policies were not evaluated: Policy Troubleshooter could not read them (the bot needs "
                      "`iam.denypolicies.get` and `iam.denypolicies.list`, `roles/iam.denyReviewer`).")
    elif deny_state == "DENY_ACCESS_STATE_UNKNOWN_CONDITIONAL":
        deny_note = _("A conditional deny rule may deny it; its condition could not be evaluated here.")
    if overall == "CAN_ACCESS":
        access = GRANTED
    elif overall == "UNKNOWN_CONDITIONAL":
        access = CONDITIONAL
    elif overall == "CANNOT_ACCESS":
        access = NOT_GRANTED
    elif overall == "UNKNOWN_INFO" and allow_access and deny_note:
        access = allow_access  # the allow side is known; the deny side is what could not be read
    else:
        return _("Policy Troubleshooter could not decide (`{state}`).").format(state=overall or _("no answer")), False
    via, cond = [], []
    for policy in allow.get("explainedPolicies") or []:
        where = re.sub(r"^//[^/]+/", "", policy.get("fullResourceName", ""))
        for b in policy.get("bindingExplanations") or []:
            c = b.get("condition") or {}
            line = describe(Binding(b.get("role", ""), (), c.get("title") or c.get("expression", "")), where)
            {"ALLOW_ACCESS_STATE_GRANTED": via, "ALLOW_ACCESS_STATE_UNKNOWN_CONDITIONAL": cond}.get(
                b.get("allowAccessState"), []).append(line)
    denied_by = []
    for res in deny.get("explainedResources") or []:
        for pol in res.get("explainedPolicies") or []:
            if pol.get("denyAccessState") in ("DENY_ACCESS_STATE_DENIED", "DENY_ACCESS_STATE_UNKNOWN_CONDITIONAL"):
                name = (pol.get("policy") or {}).get("name")
                where = re.sub(r"^//[^/]+/", "", res.get("fullResourceName", ""))
                conditional = pol["denyAccessState"] != "DENY_ACCESS_STATE_DENIED"
                if name:
                    text = (_("deny policy `{policy}` on `{resource}` (conditionally)") if conditional else
                            _("deny policy `{policy}` on `{resource}`"))
                else:
                    text = (_("a deny policy on `{resource}` (conditionally)") if conditional else
                            _("a deny policy on `{resource}`"))
                denied_by.append(text.format(policy=name, resource=where))
    return Verdict(principal, permission, resource, access, tuple(via), tuple(cond), TROUBLESHOOTER,
                   denied_by=tuple(denied_by), deny_note=deny_note)


def cluster_access(gw: Gateway, ref: ClusterRef, principal: str, permission: str = CLUSTER_GET) -> Verdict:
    """Memoised per job: does `principal` hold `permission` on the cluster?

    Raises ApiError only when the local analysis itself cannot decide (policy or a role unreadable)."""
    resource = full_cluster_name(ref)

    def local_analysis():
        try:
            return project_access(gw, ref.project, principal)
        except ApiError as err:
            return err

    def build() -> Verdict:
        # Ask the troubleshooter and prepare the local analysis at the same time: the fallback then
        # costs no extra round trips (and its facts are shared with the other IAM checks).
        got, local = gw.parallel(lambda: _troubleshooter_verdict(gw, principal, resource, permission), local_analysis)
        if isinstance(got, Verdict):
            return got
        if isinstance(local, ApiError):
            raise local
        why, deny_said = got
        via, cond = local.granting(permission), local.granting(permission, conditional=True)
        if not via and local.unreadable:
            raise next(iter(local.unreadable.values()))
        access = GRANTED if via else CONDITIONAL if cond else NOT_GRANTED
        note = "" if deny_said else _("IAM deny policies were not evaluated.")
        return Verdict(principal, permission, resource, access, tuple(describe(b, local.resource) for b in via),
                       tuple(describe(b, local.resource) for b in cond), _(SOURCE_LOCAL), why, local,
                       deny_note=note)
    return gw.memo(("cluster_access", ref.path, principal, permission), build)


# ---- Kubernetes RBAC ---------------------------------------------------------------------------
def forbidden_message(user: str, verb: str, resource: str, namespace: str = "", group: str = "",
                      permission: str = "") -> str:
    """What kubectl prints when neither RBAC nor IAM allows the request (GKE's wording).

    `resource` may name a subresource (`pods/log`); `permission` defaults to GKE's IAM permission for it."""
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    base = resource.partition("/")[0]
    what = f"{base}.{group}" if group else base
    return (f'Error from server (Forbidden): {what} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
            f'in API group "{group}" {scope}: requires one of ["{permission or iam_permission(resource, verb)}"] '
            'permission(s).')


def rbac_yaml(user: str, resource: str, verbs: list[str], namespace: str = "", group: str = "",
              subject_kind: str = "User") -> str:
    """The minimal Role + RoleBinding (ClusterRole + ClusterRoleBinding when cluster-wide) for `user`
    (a `Group` when subject_kind says so). `resource` may name a subresource (`pods/log`)."""
    kind, ns = ("Role", f"\n  namespace: {namespace}") if namespace else ("ClusterRole", "")
    base, _sep, sub = resource.partition("/")
    noun = base.removesuffix("s") + (f"-{sub}" if sub else "")
    role = f"{noun}-reader" if set(verbs) <= {"get", "list", "watch"} else f"{base}{'-' + sub if sub else ''}-access"
    binding = f"{role}-" + re.sub(r"[^a-z0-9.-]", "-", user.lower())
    return (f"apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: {role}{ns}\n"
            f"rules:\n- apiGroups: {json.dumps([group])}\n  resources: {json.dumps([resource])}\n"
            f"  verbs: {json.dumps(verbs)}\n---\n"
            f"apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}Binding\nmetadata:\n  name: {binding}{ns}\n"
            f"subjects:\n- kind: {subject_kind}\n  name: {user}\n  apiGroup: rbac.authorization.k8s.io\n"
            f"roleRef:\n  kind: {kind}\n  name: {role}\n  apiGroup: rbac.authorization.k8s.io")


# ---- Kubernetes requests as GKE IAM permissions -------------------------------------------------
# GKE authorizes a Kubernetes request through IAM with container.RESOURCE.VERB, RESOURCE in camelCase;
# custom resources fall under container.thirdPartyObjects.*.
IAM_RESOURCES = {n.lower(): n for n in (
    "apiServices", "auditSinks", "backendConfigs", "bindings", "certificateSigningRequests", "clusterRoleBindings",
    "clusterRoles", "componentStatuses", "configMaps", "controllerRevisions", "cronJobs", "csiDrivers", "csiNodes",
    "customResourceDefinitions", "daemonSets", "deployments", "endpointSlices", "endpoints", "events",
    "frontendConfigs", "horizontalPodAutoscalers", "ingresses", "jobs", "leases", "limitRanges",
    "localSubjectAccessReviews", "managedCertificates", "mutatingWebhookConfigurations", "namespaces",
    "networkPolicies", "nodes", "persistentVolumeClaims", "persistentVolumes", "podDisruptionBudgets", "podTemplates",
    "pods", "priorityClasses", "replicaSets", "replicationControllers", "resourceQuotas", "roleBindings", "roles",
    "runtimeClasses", "secrets", "selfSubjectAccessReviews", "serviceAccounts", "services", "statefulSets",
    "storageClasses", "subjectAccessReviews", "tokenReviews", "validatingWebhookConfigurations", "volumeAttachments",
    "volumeSnapshotClasses", "volumeSnapshotContents", "volumeSnapshots")}
IAM_VERBS = {"patch": "update", "watch": "list", "deletecollection": "delete"}
IAM_SUBRESOURCES = {"log": "getLogs", "exec": "exec", "attach": "attach", "portforward": "portForward",
                    "proxy": "proxy", "eviction": "evict", "rollback": "rollback", "token": "createToken",
                    "finalize": "finalize", "approval": "approve"}
# Predefined roles that carry container.* permissions, smallest first.
CONTAINER_ROLES = (VIEWER_ROLE, "roles/container.developer", "roles/container.admin")


def iam_permission(resource: str, verb: str, group: str = "") -> str:
    """GKE's IAM permission for a Kubernetes request: pods list → container.pods.list, pods/log get →
    container.pods.getLogs, deployments/scale patch → container.deployments.updateScale. Resources of API groups
    outside Kubernetes and GKE (custom resources) are container.thirdPartyObjects.*."""
    base, _sep, sub = resource.partition("/")
    if group and not (group.endswith(".k8s.io") or "." not in group or group.endswith(("gke.io", "cloud.google.com"))):
        base = "thirdPartyObjects"
    action = IAM_VERBS.get(verb, verb)
    if sub in ("status", "scale"):
        action = ("get" if action in ("get", "list") else "update") + sub.capitalize()
    elif sub:
        action = IAM_SUBRESOURCES.get(sub, action)
    return f"container.{IAM_RESOURCES.get(base, 'thirdPartyObjects')}.{action}"


def smallest_role(gw: Gateway, permission: str, candidates: tuple[str, ...] = CONTAINER_ROLES) -> str:
    """The first candidate predefined role whose definition includes `permission` ('' when none does).
    The definitions are read at once (one round trip), and are cached across jobs."""
    roles = gw.parallel(*[lambda n=n: gw.role(n) for n in candidates])
    return next((n for n, r in zip(candidates, roles) if permission in (role_grants(r) or ())), "")


# ---- Kubernetes authorization as GKE decides it -------------------------------------------------
# GKE authorizes a request when Kubernetes RBAC or IAM allows it. RBAC sees the user as GKE's
# authenticator presents it: the email as user name, the group every signed-in identity carries
# (`system:authenticated`) and, with Google Groups for RBAC, the Google groups the user belongs to
# (nested in gke-security-groups@DOMAIN), which the bot cannot see. IAM allows what the matching
# `container.*` permission allows (`container.pods.list` for `list pods`).
GKE_GROUPS = ("system:authenticated",)


@dataclass(frozen=True)
class KubeAsk:
    verb: str
    resource: str  # plural, with "/subresource" where there is one
    namespace: str = ""
    group: str = ""
    name: str = ""


@dataclass
class KubeDecision:
    """How GKE would decide one request of a principal: RBAC (SubjectAccessReview) or IAM."""

    ask: KubeAsk
    permission: str  # GKE's IAM permission for the request
    review: dict  # SubjectAccessReview status for the principal with GKE's groups
    iam: Verdict | ApiError | None
    group_review: dict | None = None  # the same review with the Google groups bindings name (membership unseen)
    groups: tuple[str, ...] = ()  # those groups
    iam_groups: tuple[str, ...] = ()  # project bindings granting the permission to Google groups (membership unseen)

    @property
    def by_rbac(self) -> bool:
        return bool(self.review.get("allowed"))

    @property
    def by_iam(self) -> bool:
        return isinstance(self.iam, Verdict) and self.iam.granted

    @property
    def allowed(self) -> bool:
        return self.by_rbac or self.by_iam

    @property
    def unknown(self) -> bool:
        """Not allowed as far as the bot can see, but a Google group it cannot see into would allow it."""
        return not self.allowed and (bool(self.group_review and self.group_review.get("allowed"))
                                     or bool(self.iam_groups))

    def explain(self) -> str:
        """Which of RBAC and IAM grants (or would grant) the request, for people."""
        if self.by_rbac and self.review.get("reason"):
            return _("RBAC allows it ({reason})").format(reason=self.review["reason"])
        if self.by_iam:
            v = self.iam
            text = (_("IAM grants `{permission}` through {bindings} (according to {source})") if self.by_rbac else
                    _("IAM grants `{permission}` through {bindings} (according to {source}); RBAC alone would deny "
                      "it, and GKE allows what either allows"))
            return text.format(permission=self.permission, bindings=", ".join(v.via), source=v.source)
        if self.by_rbac:
            return _("the API server allows it without naming an RBAC rule (GKE's IAM authorizer, through a grant the "
                     "bot cannot see)")
        parts = []
        if self.group_review and self.group_review.get("allowed"):
            reason = self.group_review.get("reason") or _("a binding to a Google group")
            parts.append(_("RBAC allows it to members of {groups} ({reason})").format(
                groups=", ".join(f"`{g}`" for g in self.groups), reason=reason))
        if self.iam_groups:
            parts.append(_("IAM grants `{permission}` to {groups}").format(permission=self.permission,
                                                                           groups=", ".join(self.iam_groups)))
        if parts:
            return _("{grants}, but the bot cannot see Google group membership (Google Groups for RBAC, and IAM grants "
                     "to groups): whether it applies cannot be told").format(grants="; ".join(parts))
        return _("neither Kubernetes RBAC nor IAM (`{permission}`) grants it").format(permission=self.permission)


def rbac_subject(principal: str) -> tuple[str, tuple[str, ...]]:
    """(user, groups) of a SubjectAccessReview for `principal` as GKE presents it to RBAC."""
    email = email_of(principal)
    if principal.startswith("group:"):
        return "", (email, *GKE_GROUPS)
    return email, GKE_GROUPS


def google_groups_in_bindings(bindings: list[dict]) -> tuple[str, ...]:
    """Google groups (emails) that (Cluster)RoleBindings name as Group subjects."""
    return tuple(sorted({s["name"] for b in bindings for s in b.get("subjects") or []
                         if s.get("kind") == "Group" and "@" in (s.get("name") or "")
                         and not s["name"].startswith("system:")}))


def iam_group_grants(gw: Gateway, project: str, permission: str) -> tuple[str, ...]:
    """Project bindings that grant `permission` unconditionally to Google groups, for people."""
    def build():
        found = []
        for b in bindings(gw.project_iam_policy(project)):
            groups = [m for m in b.members if m.startswith("group:")]
            if groups and not b.condition and permission in (role_grants(gw.role(b.role)) or ()):
                found += [f"`{g}` (`{b.role}`)" for g in groups]
        return tuple(found)
    return gw.memo(("iam_group_grants", project, permission), build)


def kube_decisions(gw: Gateway, ref: ClusterRef, principal: str, asks: list[KubeAsk],
                   google_groups: tuple[str, ...] = ()) -> list[KubeDecision]:
    """GKE's decision on each ask: SubjectAccessReviews (with GKE's groups; again with `google_groups` when
    Google Groups for RBAC is on), IAM for the matching permission, at once. SAR errors raise ApiError."""
    user, groups = rbac_subject(principal)
    members = tuple(g for g in google_groups if g not in groups) if not principal.startswith("group:") else ()

    def sar(ask: KubeAsk, with_groups: tuple[str, ...]):
        base, _sep, sub = ask.resource.partition("/")
        return gw.subject_access_review(ref, user=user, verb=ask.verb, resource=base, namespace=ask.namespace,
                                        group=ask.group, subresource=sub, name=ask.name, groups=with_groups)

    def iam(ask: KubeAsk):
        permission = iam_permission(ask.resource, ask.verb, ask.group)
        try:
            verdict = cluster_access(gw, ref, principal, permission)
        except ApiError as err:
            return err, ()
        unseen = ()
        if not verdict.granted and verdict.local is not None:
            try:
                unseen = iam_group_grants(gw, ref.project, permission)
            except ApiError:
                unseen = ()
        return verdict, unseen
    jobs = [lambda a=a: sar(a, groups) for a in asks] + [lambda a=a: iam(a) for a in asks]
    if members:
        jobs += [lambda a=a: sar(a, groups + members) for a in asks]
    got = gw.parallel(*jobs)
    n = len(asks)
    out = []
    for i, ask in enumerate(asks):
        verdict, unseen = got[n + i]
        out.append(KubeDecision(ask, iam_permission(ask.resource, ask.verb, ask.group), got[i], verdict,
                                got[2 * n + i] if members else None, members, unseen))
    return out


def rbac_bindings(gw: Gateway, ref: ClusterRef) -> tuple[list[dict], str]:
    """Every ClusterRoleBinding and RoleBinding (memoised lists), and a note when some could not be read."""
    from checks.gateway import kube as kc

    def listing(decl):
        try:
            return gw.kube_list(ref, decl)
        except ApiError as err:
            return err
    found, notes = [], []
    for items in gw.parallel(lambda: listing(kc.CLUSTERROLEBINDINGS_LIST), lambda: listing(kc.ROLEBINDINGS_LIST)):
        if isinstance(items, ApiError):
            notes.append(_("Bindings could not be listed: {error}").format(error=items.explain()))
        else:
            found.extend(items)
    return found, " ".join(notes)
