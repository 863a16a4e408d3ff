"""The `/gke` command grammar. Pure: validates everything before any API call or job."""
from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field

from checks.names import (DNS_LABEL_RE, DNS_SUBDOMAIN_RE, LOCATION_RE, PROJECT_RE, cluster_problem,
                          normalize_principal)
from checks.resolve import ClusterSpec

DIAGNOSES = ("why-403", "why-401", "why-400", "why-404", "wi", "rbac", "ingress", "doctor")
COMMANDS = DIAGNOSES + ("audit", "help")
MAX_TEXT = 500

USAGE = {
    "why-403": "why-403 CLUSTER [--as PRINCIPAL]  — 403 Forbidden: IAM, service agents, RBAC",
    "why-401": "why-401 CLUSTER [--as PRINCIPAL]  — 401 Unauthorized: auth plugin, tokens, endpoint access",
    "why-400": "why-400 CLUSTER  — 400 errors: node pools that need recreation, version skew",
    "why-404": "why-404 CLUSTER  — 404 Not found: wrong project/location, stale credentials",
    "wi": "wi CLUSTER NAMESPACE/KSA  — Workload Identity for a Kubernetes service account",
    "rbac": "rbac CLUSTER VERB RESOURCE [-n NAMESPACE] [--as PRINCIPAL]  — can the principal do it?",
    "ingress": "ingress CLUSTER [NAMESPACE/NAME]  — why a GCE Ingress has no address or is unhealthy",
    "doctor": "doctor CLUSTER  — every cluster-level check",
    "audit": "audit [N]  — the latest remediation audit entries (approvers)",
    "help": "help [COMMAND]  — this help",
}
CLUSTER_FORMS = "CLUSTER is `NAME`, `LOCATION/NAME` or `PROJECT/LOCATION/NAME`; `--project P`, `--location L` also work."


class GrammarError(ValueError):
    """The text is not a valid command. The message is safe to show (no user text unescaped)."""

    def __init__(self, message: str, suggestion: str = ""):
        super().__init__(message)
        self.suggestion = suggestion


@dataclass
class Command:
    name: str
    cluster: ClusterSpec | None = None
    principal: str = ""
    args: dict = field(default_factory=dict)
    text: str = ""  # the normalised command line, for display

    def to_json(self) -> dict:
        d = asdict(self)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Command":
        spec = d.get("cluster")
        return cls(d["name"], ClusterSpec(**spec) if spec else None, d.get("principal", ""), d.get("args", {}),
                   d.get("text", ""))


def _closest(word: str) -> str:
    m = difflib.get_close_matches(word.lower(), COMMANDS, n=1, cutoff=0.5)
    return m[0] if m else ""


def _cluster(text: str, project: str, location: str) -> ClusterSpec:
    parts = text.split("/")
    if len(parts) > 3 or not all(parts):
        raise GrammarError(f"That is not a cluster reference. {CLUSTER_FORMS}")
    name = parts[-1]
    loc = parts[-2] if len(parts) >= 2 else ""
    proj = parts[0] if len(parts) == 3 else ""
    if project and proj and project != proj:
        raise GrammarError("The project is given twice, differently.")
    if location and loc and location != loc:
        raise GrammarError("The location is given twice, differently.")
    proj, loc = proj or project, loc or location
    why = cluster_problem(name)
    if why:
        raise GrammarError(f"That is not a valid cluster name: {why}.")
    if proj and not PROJECT_RE.match(proj):
        raise GrammarError("That is not a valid project id: 6–30 lowercase letters, digits and hyphens, "
                           "starting with a letter.")
    if loc and not LOCATION_RE.match(loc):
        raise GrammarError("That is not a valid location: a region such as `europe-west4` or a zone such as "
                           "`europe-west4-a`.")
    return ClusterSpec(name=name, location=loc, project=proj)


def _ns_name(text: str, what: str) -> tuple[str, str]:
    ns, sep, name = text.partition("/")
    if not sep or not DNS_LABEL_RE.match(ns) or not DNS_SUBDOMAIN_RE.match(name):
        raise GrammarError(f"{what} is NAMESPACE/NAME with Kubernetes names (lowercase letters, digits, '-', '.').")
    return ns, name


def parse(text: str) -> Command:
    """Parse the text after `/gke`. Raises GrammarError with a message fit for the user."""
    if len(text) > MAX_TEXT:
        raise GrammarError(f"That command is too long (over {MAX_TEXT} characters).")
    # Slack clients may turn "--" into an em or en dash.
    words = text.replace("\u2014", "--").replace("\u2013", "--").split()
    if not words:
        return Command("help", text="help")
    name = words[0].lower()
    if name not in COMMANDS:
        near = _closest(name)
        raise GrammarError("Unknown command." + (f" Did you mean `{near}`?" if near else ""), near)
    opts: dict[str, str] = {}
    positional: list[str] = []
    flags = {"--project": "project", "--location": "location", "--as": "as", "-n": "namespace",
             "--namespace": "namespace", "--zone": "location", "--region": "location"}
    i = 1
    while i < len(words):
        w = words[i]
        key, eq, val = w.partition("=")
        if key in flags:
            if not eq:
                if i + 1 >= len(words):
                    raise GrammarError(f"`{key}` needs a value.")
                i += 1
                val = words[i]
            opts[flags[key]] = val
        elif w.startswith("-"):
            raise GrammarError(f"Unknown option. {USAGE[name]}")
        else:
            positional.append(w)
        i += 1
    if name == "help":
        topic = positional[0].lower() if positional else ""
        return Command("help", args={"topic": topic if topic in COMMANDS else ""}, text="help")
    if name == "audit":
        n = positional[0] if positional else "10"
        if not n.isdigit() or not 1 <= int(n) <= 100:
            raise GrammarError("`audit N` takes a number from 1 to 100.")
        return Command("audit", args={"n": int(n)}, text=f"audit {n}")
    if not positional:
        raise GrammarError(f"Which cluster? Usage: `{USAGE[name]}`. {CLUSTER_FORMS}")
    spec = _cluster(positional[0], opts.get("project", ""), opts.get("location", ""))
    principal = ""
    if "as" in opts:
        try:
            principal = normalize_principal(opts["as"])
        except ValueError as exc:
            raise GrammarError(f"`--as`: {exc}.") from None
    args: dict = {}
    rest = positional[1:]
    if name == "wi":
        if len(rest) != 1:
            raise GrammarError(f"Usage: `{USAGE['wi']}`")
        args["namespace"], args["ksa"] = _ns_name(rest[0], "The Kubernetes service account")
    elif name == "rbac":
        if len(rest) != 2:
            raise GrammarError(f"Usage: `{USAGE['rbac']}`")
        verb, resource = rest[0].lower(), rest[1].lower()
        if verb not in {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "*",
                        "impersonate", "bind", "escalate", "use", "approve"}:
            raise GrammarError("That is not a Kubernetes verb (get, list, watch, create, update, patch, delete…).")
        # kubectl's RESOURCE[.GROUP][/SUBRESOURCE], e.g. pods, deployments.apps, pods/log
        res, _, group = resource.partition(".")
        group, _, sub_of_group = group.partition("/")
        res_name, _, sub = res.partition("/")
        sub = sub or sub_of_group
        res = f"{res_name}/{sub}" if sub else res_name
        if not DNS_LABEL_RE.match(res_name) or (sub and not DNS_LABEL_RE.match(sub)) or (
                group and not DNS_SUBDOMAIN_RE.match(group)):
            raise GrammarError("That is not a Kubernetes resource name (e.g. `pods`, `deployments.apps`, `pods/log`).")
        args.update(verb=verb, resource=res, group=group)
        if "namespace" in opts:
            if not DNS_LABEL_RE.match(opts["namespace"]):
                raise GrammarError("That is not a valid namespace name.")
            args["namespace"] = opts["namespace"]
    elif name == "ingress":
        if len(rest) > 1:
            raise GrammarError(f"Usage: `{USAGE['ingress']}`")
        if rest:
            args["namespace"], args["ingress"] = _ns_name(rest[0], "The Ingress")
    elif rest:
        raise GrammarError(f"Too many words. Usage: `{USAGE[name]}`")
    shown = " ".join([name, str(spec)] + rest + ([f"--as {principal}"] if principal else [])
                     + ([f"-n {args['namespace']}"] if name == "rbac" and "namespace" in args else []))
    return Command(name, spec, principal, args, shown)
