"""Recognise a pasted error: which diagnosis it calls for, and with which arguments (issue 15, part 1).

    from checks.explain import recognize, recognize_all, KINDS
    rec = recognize(text)          # the best Recognition, or None when nothing is recognised
    rec.command, rec.args          # e.g. "rbac", {"verb": "list", "resource": "roles", ...}
    rec.cluster                    # a ClusterSpec when the text names one cluster, else None
    rec.principal                  # the IAM member the text names ("user:…", "serviceAccount:…"), or ""
    rec.quote                      # the matched error lines, as pasted (untrusted: escape when showing)
    rec.summary()                  # one translated line saying what was recognised

Slack-free and pure: no network, no Slack, no globals changed. The text is untrusted. It is cut to
MAX_INPUT characters, normalised (Slack markup, HTML entities, smart quotes, ANSI colours, code
fences, shell prompts, escaped JSON, line wraps), then matched with bounded regular expressions
(every repetition has an upper bound or a class that cannot overlap what follows, so matching is
linear in the input; bench/explain.py measures it). Every value taken from the text is checked with
the rules of the command grammar (checks.names) before it becomes an argument; a value that would
not parse as a typed command is dropped and named in `Recognition.ignored`.

Each kind of error is one entry of KINDS: its stable id, the diagnosis command it calls for, a
one-line description (for "I did not recognise this; I can recognise: …") and its summaries.
"""
from __future__ import annotations

import bisect
import re
import string
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlsplit

from checks.i18n import N_, _
from checks.names import (CLUSTER_RE, DNS_LABEL_RE, DNS_SUBDOMAIN_RE, EMAIL_RE, LOCATION_RE, PROJECT_RE,
                          normalize_principal)
from checks.resolve import ClusterSpec

MAX_INPUT = 8192  # characters read from a message; the rest is ignored (Recognition.truncated)
QUOTE_MAX = 400  # characters of evidence quoted back
COMMANDS = ("why-403", "why-401", "why-400", "why-404", "wi", "rbac", "ingress", "doctor")
# the verbs the rbac command accepts (bot/grammar.py)
VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "*",
                   "impersonate", "bind", "escalate", "use", "approve"})
PERMISSION_RE = re.compile(r"^[a-z][a-zA-Z0-9]{0,40}(?:\.[a-zA-Z][a-zA-Z0-9]{0,60}){2,3}$")  # container.clusters.get
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_COLLECTION_RE = re.compile(r"^[a-z][A-Za-z]{0,39}$")
_PATH_RE = re.compile(r"^/[A-Za-z0-9/._-]{0,199}$")  # a non-resource URL path, `cannot get path "/apis"`


# ---------------------------------------------------------------------------------------------------
# The kinds

@dataclass(frozen=True)
class Kind:
    id: str
    command: str
    description: str  # N_(): one line for the list of what the bot recognises
    summaries: tuple[str, ...]  # N_() templates, most specific first; the first whose fields are known is used
    needs: tuple[str, ...] = ()  # arguments the command cannot run without


_KIND_LIST = (
    Kind("wi-iamcredentials-disabled", "wi",
         N_("Workload Identity: the IAM Service Account Credentials API is disabled (`IAM Service Account "
            "Credentials API has not been used in project …`)"),
         (N_("The GKE metadata server could not get a token: the IAM Service Account Credentials API is "
             "disabled in the project."),), ("namespace", "ksa")),
    Kind("wi-permission-denied", "wi",
         N_("Workload Identity: `Unable to generate access token; IAM returned 403` or `Permission "
            "'iam.serviceAccounts.getAccessToken' denied`"),
         (N_("The GKE metadata server could not get a token for the workload's IAM service account: IAM "
             "answered 403."),), ("namespace", "ksa")),
    Kind("wi-pod-not-found", "wi",
         N_("Workload Identity: gke-metadata-server logs `Unable to find pod: generic::not_found`"),
         (N_("The GKE metadata server could not match a request to a Pod (`Unable to find pod`)."),),
         ("namespace", "ksa")),
    Kind("deploy-patch-failed", "why-403",
         N_("Enabling Workload Identity fails with `DeployPatch failed`"),
         (N_("Enabling Workload Identity failed with `DeployPatch failed`: the GKE service agent has probably "
             "lost its role."),)),
    Kind("auth-plugin-missing", "why-401",
         N_("kubectl cannot get credentials: gke-gcloud-auth-plugin not found, or the removed gcp auth "
            "provider"),
         (N_("kubectl could not get credentials: gke-gcloud-auth-plugin is missing, or the kubeconfig still "
             "uses the removed gcp auth provider."),)),
    Kind("kubectl-anonymous", "why-401",
         N_("A request reached the cluster without credentials (`User \"system:anonymous\" cannot …`)"),
         (N_("The request reached the cluster as `system:anonymous`: no credentials were sent."),)),
    Kind("kubectl-forbidden", "rbac",
         N_("Kubernetes refusal: `Error from server (Forbidden): … User \"U\" cannot VERB resource \"R\" in API "
            "group \"G\" …`"),
         (N_("Kubernetes refused `{verb}` on `{resource}` in namespace `{namespace}`."),
          N_("Kubernetes refused `{verb}` on `{resource}` at cluster scope."),
          N_("Kubernetes refused `{verb}` on `{resource}`."),
          N_("Kubernetes refused a request (Forbidden)."),), ("verb", "resource")),
    Kind("kubectl-forbidden-path", "why-403",
         N_("Kubernetes refusal of a URL path: `User \"U\" cannot get path \"/…\"`"),
         (N_("Kubernetes refused `{verb}` on the path `{path}`."),
          N_("Kubernetes refused a request for a URL path (Forbidden)."),)),
    Kind("node-pool-recreation", "why-400",
         N_("400: `Node pool \"POOL\" requires recreation.`"),
         (N_("Node pool `{pool}` must be recreated before this operation can run."),
          N_("A node pool must be recreated before this operation can run."),)),
    Kind("incompatible-operation", "why-400",
         N_("400: `Cluster is running incompatible operation …`"),
         (N_("Another operation is running on the cluster, so GKE refused this one."),)),
    Kind("retry-budget-exhausted", "why-403",
         N_("403: `Retry budget exhausted: … Required permission 'PERM' for 'RESOURCE'` (a service account of "
            "the cluster lacks permissions)"),
         (N_("A service account of the cluster lacks `{permission}` on `{target}` (Retry budget exhausted)."),
          N_("A service account of the cluster lacks `{permission}` (Retry budget exhausted)."),
          N_("A service account of the cluster lacks a permission (Retry budget exhausted)."),)),
    Kind("service-agent-missing", "why-403",
         N_("400/403: the account has no edit permission (a GKE service agent or default service account, or "
            "its role, was removed)"),
         (N_("A Google-managed account of the project lacks its permissions (the account has no edit "
             "permission)."),)),
    Kind("container-api-disabled", "why-403",
         N_("403: `Kubernetes Engine API has not been used in project … or it is disabled`"),
         (N_("The Kubernetes Engine API is disabled in the project."),)),
    Kind("node-sa-permissions", "why-403",
         N_("Node service account without roles/container.defaultNodeServiceAccount"),
         (N_("The nodes' service account lacks the permissions of roles/container.defaultNodeServiceAccount."),)),
    Kind("cluster-permission-denied", "why-403",
         N_("403: `Required \"container.clusters.get\" permission(s) for \"projects/P/locations/L/clusters/C\"`"),
         (N_("Google Cloud refused `{permission}` on `{target}`."),
          N_("Google Cloud refused `{permission}`."),)),
    Kind("permission-denied", "why-403",
         N_("403 from Google Cloud: `Required 'PERM' permission for 'RESOURCE'`, `Permission 'PERM' denied on "
            "resource …`"),
         (N_("Google Cloud refused `{permission}` on `{target}`."),
          N_("Google Cloud refused `{permission}`."),)),
    Kind("project-not-found", "why-404",
         N_("403/404: `Project lookup error: permission denied on resource 'projects/P' (or it may not exist)`"),
         (N_("Google Cloud could not find or may not show the project `{target}`."),
          N_("Google Cloud could not find or may not show the project."),)),
    Kind("cluster-not-found", "why-404",
         N_("404: `ResponseError: code=404, message=Not found: projects/P/locations/L/clusters/C.`"),
         (N_("Google Cloud did not find `{target}` (404)."),
          N_("Google Cloud answered 404 Not found for a cluster."),)),
    Kind("unauthorized", "why-401",
         N_("401: `You must be logged in to the server (Unauthorized)`, a Status JSON with `\"code\": 401`"),
         (N_("The cluster's API server answered 401 Unauthorized."),)),
    Kind("control-plane-unreachable", "why-401",
         N_("kubectl cannot reach the control plane: `Unable to connect to the server: dial tcp …:443: i/o "
            "timeout`"),
         (N_("kubectl could not reach the cluster's control plane endpoint."),)),
    Kind("wi-metadata-server-crash", "wi",
         N_("Workload Identity: gke-metadata-server Pods in CrashLoopBackOff or OOMKilled"),
         (N_("gke-metadata-server Pods are crashing, so Pods on their nodes get no credentials."),),
         ("namespace", "ksa")),
    Kind("wi-control-plane", "wi",
         N_("Workload Identity: `dial tcp …:443: connect: connection refused` (control plane unavailable)"),
         (N_("The GKE metadata server could not reach the control plane, so it could not issue credentials."),),
         ("namespace", "ksa")),
    Kind("wi-metadata-unreachable", "wi",
         N_("Workload Identity: the metadata server cannot be reached (`169.254.169.254` refused, "
            "`metadata.google.internal` not resolved)"),
         (N_("The workload could not reach the GKE metadata server."),), ("namespace", "ksa")),
    Kind("wi-metadata-timeout", "wi",
         N_("Workload Identity: timeouts waiting for the metadata server when a Pod starts"),
         (N_("The workload timed out waiting for the GKE metadata server."),), ("namespace", "ksa")),
    Kind("wi-metadata-error", "wi",
         N_("Workload Identity: the metadata server answers an error (`GKE Metadata Server`, `Failed to "
            "retrieve … from the Google Compute Engine metadata service`)"),
         (N_("The GKE metadata server answered an error to the workload."),), ("namespace", "ksa")),
    Kind("wi-no-credentials", "wi",
         N_("Workload Identity: `could not find default credentials`, `Could not automatically determine "
            "credentials`, GOOGLE_APPLICATION_CREDENTIALS"),
         (N_("The client library found no default credentials: the GKE metadata server did not give it any."),),
         ("namespace", "ksa")),
    Kind("ingress-health-check-redirect", "ingress",
         N_("Ingress: the health check path answers a redirect (`HTTP/1.1 307 Temporary Redirect`)"),
         (N_("The health check path answers a redirect ({status}); the load balancer counts only 200 as "
             "healthy."),
          N_("The health check path answers a redirect; the load balancer counts only 200 as healthy."),)),
    Kind("ingress-sync-error", "ingress",
         N_("Ingress: `Translation failed: …` or `Error syncing to GCP: …` events"),
         (N_("The GKE Ingress controller could not build the load balancer."),)),
    Kind("ingress-unhealthy", "ingress",
         N_("Ingress: backends UNHEALTHY (`ingress.kubernetes.io/backends`, 502 Server Error)"),
         (N_("The load balancer reports Ingress backends UNHEALTHY."),)),
    Kind("ingress-no-address", "ingress",
         N_("Ingress: no address (`kubectl get ingress` shows an empty ADDRESS)"),
         (N_("The Ingress has no address: the load balancer was not built."),)),
)
KINDS: dict[str, Kind] = {k.id: k for k in _KIND_LIST}
_RANK = {k.id: i for i, k in enumerate(_KIND_LIST)}


def kinds() -> list[tuple[str, str, str]]:
    """(kind, command, translated description) of everything the bot recognises, for "not recognised"."""
    return [(k.id, k.command, _(k.description)) for k in _KIND_LIST]


# ---------------------------------------------------------------------------------------------------
# The result

@dataclass(frozen=True)
class Recognition:
    kind: str
    command: str
    cluster: ClusterSpec | None = None  # the one cluster the text names (else None: ask, e.g. a cluster picker)
    args: dict = field(default_factory=dict)  # exactly the keys the command uses
    principal: str = ""  # the IAM member the text names (user:/serviceAccount:/group:); the edge decides if it is used
    quote: str = ""  # the matched error lines as pasted (untrusted; secrets redacted); escape when showing
    project: str = ""  # project / location the text names, even without a cluster name (narrows a picker)
    location: str = ""
    clusters: tuple[ClusterSpec, ...] = ()  # every distinct cluster the text names (more than one: ask)
    named: dict = field(default_factory=dict)  # other validated values named, for the answer (permission, …)
    missing: tuple[str, ...] = ()  # arguments the command needs and the text does not give
    ignored: tuple[str, ...] = ()  # values found in the text and dropped because they are not valid
    truncated: bool = False  # the text was longer than MAX_INPUT; only the start was read

    @property
    def cluster_found(self) -> bool:
        return self.cluster is not None

    @property
    def complete(self) -> bool:
        """The command can run as soon as it has a cluster."""
        return not self.missing

    def with_cluster(self, spec: ClusterSpec | None) -> "Recognition":
        """A copy with the cluster the asker chose (picker, or `/gke explain CLUSTER …`)."""
        return replace(self, cluster=spec)

    def _fields(self) -> dict[str, str]:
        out = {k: str(v) for k, v in self.named.items() if isinstance(v, str) and v}
        out.update({k: str(v) for k, v in self.args.items() if isinstance(v, str) and v})
        if self.kind == "kubectl-forbidden" and self.args.get("resource"):
            out["resource"] = resource_text(self.args["resource"], self.args.get("group", ""))
        if self.args.get("resource") and self.command == "why-403":
            out["target"] = self.args["resource"]
        return out

    def summary(self) -> str:
        """One line, in the reader's language, of what was recognised. Values in it are validated
        identifiers in backticks (no `<`, `>`, `&`), so it is safe as Slack mrkdwn."""
        have = self._fields()
        for template in KINDS[self.kind].summaries:
            wanted = {f for _lit, f, _s, _c in string.Formatter().parse(template) if f}
            if template.endswith("at cluster scope.") and self.named.get("scope") != "cluster":
                continue  # only when the error says so (an invalid namespace was dropped, not absent)
            if wanted <= set(have):
                return _(template).format(**{k: have[k] for k in wanted})
        return _(KINDS[self.kind].summaries[-1])

    def lines(self) -> list[str]:
        """Translated facts for the answer: the cluster, who the error names, what is missing or ignored."""
        out = []
        if self.cluster is not None:
            out.append(_("Cluster: `{cluster}`.").format(cluster=self.cluster))
        elif len(self.clusters) > 1:
            out.append(_("The text names several clusters: {clusters}.").format(
                clusters=", ".join(f"`{c}`" for c in self.clusters)))
        else:
            out.append(_("The text names no cluster."))
        if self.principal:
            out.append(_("The error names `{principal}`.").format(principal=self.principal))
        if self.named.get("kubernetes_user"):
            out.append(_("The error names the Kubernetes user `{user}`, which is not a Google account.").format(
                user=self.named["kubernetes_user"]))
        if self.named.get("kubernetes_service_account"):
            out.append(_("The error names the Kubernetes service account `{ksa}`.").format(
                ksa=self.named["kubernetes_service_account"]))
        if self.named.get("suggested"):
            out.append(_("gcloud suggests `{suggested}` (LOCATION/NAME).").format(suggested=self.named["suggested"]))
        if "ksa" in self.missing:
            out.append(_("The text names no Kubernetes service account: give it as NAMESPACE/KSA."))
        if self.ignored:
            out.append(_("Not used, because not valid: {fields}.").format(
                fields=", ".join(f"`{f}`" for f in self.ignored)))
        if self.truncated:
            out.append(_("Only the first {n} characters were read.").format(n=MAX_INPUT))
        return out

    def command_line(self, cluster: ClusterSpec | None = None, principal: str | None = None) -> str:
        """The typed command this stands for (`rbac P/L/C list roles.rbac.authorization.k8s.io -n kube-system`),
        with `cluster` instead of the one found and `principal` instead of the one named (pass "" to drop
        it); "" while a cluster or a needed argument is missing. Arguments the grammar has no words for
        (why-400's pool, why-403's permission and resource) stay in `args` only."""
        spec = cluster if cluster is not None else self.cluster
        if spec is None or self.missing:
            return ""
        who = self.principal if principal is None else principal
        words = [self.command, str(spec)]
        a = self.args
        if self.command == "wi":
            words.append(f"{a['namespace']}/{a['ksa']}")
        elif self.command == "rbac":
            words += [a["verb"], resource_text(a["resource"], a.get("group", ""))]
            if a.get("namespace"):
                words += ["-n", a["namespace"]]
        elif self.command == "ingress" and a.get("ingress"):
            words.append(f"{a['namespace']}/{a['ingress']}")
        if who and self.command in ("why-403", "why-401", "rbac"):
            words += ["--as", who]
        return " ".join(words)

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in ("kind", "command", "args", "principal", "quote", "project", "location",
                                           "named", "truncated")}
        d["cluster"] = _spec_json(self.cluster)
        d["clusters"] = [_spec_json(c) for c in self.clusters]
        d["missing"], d["ignored"] = list(self.missing), list(self.ignored)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Recognition":
        return cls(d["kind"], d["command"], ClusterSpec(**d["cluster"]) if d.get("cluster") else None,
                   dict(d.get("args") or {}), d.get("principal", ""), d.get("quote", ""), d.get("project", ""),
                   d.get("location", ""), tuple(ClusterSpec(**c) for c in d.get("clusters") or ()),
                   dict(d.get("named") or {}), tuple(d.get("missing") or ()), tuple(d.get("ignored") or ()),
                   bool(d.get("truncated")))


def _spec_json(spec: ClusterSpec | None) -> dict | None:
    return None if spec is None else {"name": spec.name, "location": spec.location, "project": spec.project}


def resource_text(resource: str, group: str) -> str:
    """kubectl's RESOURCE[.GROUP][/SUBRESOURCE], as the rbac command takes it: `pods/log`, `deployments.apps`."""
    base, _sep, sub = resource.partition("/")
    return base + (f".{group}" if group else "") + (f"/{sub}" if sub else "")


# ---------------------------------------------------------------------------------------------------
# Normalising the pasted text

_ANSI = re.compile(r"\x1b\[[0-9;?]{0,32}[ -/]{0,4}[@-~]|\x1b\][^\x07\x1b]{0,256}(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200d\u2060\ufeff]")
_SPACES = re.compile(r"[\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_SLACK = re.compile(r"<((?:https?://|mailto:|tel:|[!@#])[^<>\n]{0,2000})>")
_ESCAPED_QUOTE = re.compile(r"\\{1,8}([\"'])")
_ESCAPED_NL = re.compile(r"\\{1,4}[nr]")
_ESCAPED_UNICODE = re.compile(r"\\u([0-9a-fA-F]{4})")
_PROMPT = re.compile(r"^(?:[│╷╵┃|]\s?|(?:\$|❯|➜|>|%|#|PS [A-Za-z]:\\[^>\n]{0,200}>)\s+){1,3}")
_RUNS = re.compile(r" {2,}")
_ENTITIES = re.compile(r"&(lt|gt|amp|quot|apos|#39|#x27|#34|#x22);")
_ENTITY = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'", "#39": "'", "#x27": "'", "#34": '"', "#x22": '"'}
_URL = re.compile(r"https?://[^\s<>\"'|`]{1,2048}")
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\uff02": '"',
                         "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\uff07": "'"})


def _slack_token(m: re.Match, urls: list[str]) -> str:
    body = m.group(1)
    target, _sep, label = body.partition("|")
    if target.startswith(("http://", "https://")):
        urls.append(target)
        return label or target
    if target.startswith(("mailto:", "tel:")):
        return label or target.partition(":")[2]
    if target.startswith("@"):
        return label or target  # <@U123> → @U123: plain text, pings nobody
    if target.startswith("#"):
        return "#" + (label or target[1:])
    return label if label.startswith("@") else ""  # <!channel>, <!here>, <!everyone>, <!subteam^…|@team>, <!date…>


def normalize(text: str) -> tuple[list[str], list[str], bool]:
    """(lines, link targets, truncated): the text as a person would read it, one stripped line each."""
    truncated = len(text) > MAX_INPUT
    text = text[:MAX_INPUT]
    urls: list[str] = []
    text = _ANSI.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _SLACK.sub(lambda m: _slack_token(m, urls), text)  # Slack markup first: user text has &lt; for <
    text = _ENTITIES.sub(lambda m: _ENTITY[m.group(1)], text)  # only these: "&region=" stays as it is
    text = text.translate(_QUOTES).replace("\u2014", "--").replace("\u2013", "--")
    text = _ESCAPED_UNICODE.sub(lambda m: chr(int(m.group(1), 16)), text)
    text = _ESCAPED_NL.sub("\n", text)
    text = _ESCAPED_QUOTE.sub(r"\1", text)
    text = text.replace("```", "\n").replace("`", "")
    lines = []
    for line in text.split("\n"):
        line = _PROMPT.sub("", line.strip())
        lines.append(_RUNS.sub(" ", line).strip())
    return lines, urls, truncated


class _Text:
    """The normalised text: its lines, and `flat`, the lines joined with spaces (errors wrap)."""

    def __init__(self, raw: str):
        self.lines, self.urls, self.truncated = normalize(raw or "")
        starts, parts, pos = [], [], 0
        for line in self.lines:
            starts.append(pos)
            parts.append(line)
            pos += len(line) + 1
        self.starts = starts
        self.flat = " ".join(parts)
        self.lower = self.flat.lower()
        self.urls += _URL.findall(self.flat)

    def line_of(self, pos: int) -> int:
        return max(0, bisect.bisect_right(self.starts, pos) - 1)

    def quote(self, start: int, end: int) -> str:
        first, last = self.line_of(start), self.line_of(max(start, end - 1))
        lines = [ln for ln in self.lines[first:last + 1] if ln]
        text = "\n".join(lines)
        if len(text) > QUOTE_MAX:  # one long line (a JSON log entry): a window around the match
            a = start - 80  # some context before the match, and the match's end (where it says what it is)
            if end - a > QUOTE_MAX - 2:
                a = end - (QUOTE_MAX - 2)
            a = max(0, a)
            b = min(len(self.flat), a + QUOTE_MAX - 2)
            text = ("…" if a else "") + self.flat[a:b].strip() + ("…" if b < len(self.flat) else "")
        return redact(text)

    def near(self, pos: int, before: int, after: int) -> str:
        return self.lower[max(0, pos - before):pos + after]


_SECRETS = (
    (re.compile(r"(?i)(bearer\s{1,4})[A-Za-z0-9._~+/=-]{8,4096}"), r"\1‹redacted›"),
    (re.compile(r"ya29\.[A-Za-z0-9._-]{8,4096}"), "‹redacted›"),
    (re.compile(r"AIza[0-9A-Za-z_-]{35}"), "‹redacted›"),
    (re.compile(r"(?i)((?<![A-Za-z0-9_])\"?(?:access_token|id_token|refresh_token|client_secret|password|token)\"?"
                r"\s{0,3}[:=]\s{0,3}\"?)[A-Za-z0-9._~+/=-]{16,4096}"), r"\1‹redacted›"),
    (re.compile(r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----[\s\S]{0,8192}?-----END [A-Z ]{0,40}PRIVATE KEY-----"),
     "‹redacted private key›"),
)


def redact(text: str) -> str:
    """Tokens, keys and passwords out of a quote: the bot never repeats a secret."""
    for pattern, repl in _SECRETS:
        text = pattern.sub(repl, text)
    return text


# ---------------------------------------------------------------------------------------------------
# Validation (the grammar's rules)

def _valid_spec(name: str, location: str = "", project: str = "") -> ClusterSpec | None:
    if not CLUSTER_RE.match(name or ""):
        return None
    if location and not LOCATION_RE.match(location):
        return None
    if project and not PROJECT_RE.match(project):
        project = ""
    return ClusterSpec(name=name, location=location, project=project)


def _valid_resource(path: str) -> bool:
    """A Google resource name (`projects/P/locations/L/clusters/C`, `//container.googleapis.com/…`) whose
    parts pass the grammar's rules."""
    if len(path) > 300:
        return False
    if path.startswith("//"):
        host, _sep, path = path[2:].partition("/")
        if not re.match(r"^[a-z0-9.-]{1,100}\.googleapis\.com$", host):
            return False
    parts, raw = [], path.split("/")
    for i, p in enumerate(raw):  # `global` is a collection without an id: projects/P/global/networks/N
        if p == "global" and len(parts) % 2 == 0 and i + 1 < len(raw):
            continue
        parts.append(p)
    if len(parts) < 2 or len(parts) % 2:
        return False
    for coll, ident in zip(parts[::2], parts[1::2]):
        if not _COLLECTION_RE.match(coll) or not _SEGMENT_RE.match(ident):
            return False
        if coll == "projects" and not (PROJECT_RE.match(ident) or ident.isdigit()):
            return False
        if coll in ("locations", "zones", "regions") and not (LOCATION_RE.match(ident) or ident == "global"):
            return False
        if coll in ("clusters", "nodePools") and not CLUSTER_RE.match(ident):
            return False
    return True


def _principal(email: str) -> str:
    try:
        return normalize_principal(email) if len(email) <= 254 else ""
    except ValueError:
        return ""


def _ksa(ns: str, name: str) -> tuple[str, str] | None:
    return (ns, name) if DNS_LABEL_RE.match(ns) and DNS_SUBDOMAIN_RE.match(name) else None


# ---------------------------------------------------------------------------------------------------
# What the text names: clusters, projects, locations, Kubernetes service accounts, Ingresses

_CLUSTER_PATH = re.compile(r"projects/([^/\s\"'`,;()\[\]]{1,64})/(?:locations|zones)/([^/\s\"'`,;()\[\]]{1,64})"
                           r"/clusters/([^/\s\"'`,;:()\[\]]{1,64})(?:/node[pP]ools/([^/\s\"'`,;:()\[\]]{1,64}))?")
_PROJECT_PATH = re.compile(r"projects/([a-z][a-z0-9-]{4,28}[a-z0-9])(?![a-z0-9-])")
_LOCATION_PATH = re.compile(r"(?:locations|zones|regions)/([a-z]{1,20}-[a-z]{1,20}[0-9]{1,2}(?:-[a-z])?)(?![a-z0-9-])")
_CONTEXT = re.compile(r"(?<![A-Za-z0-9])gke_([a-z][a-z0-9-]{4,28}[a-z0-9])_([a-z]{1,20}-[a-z]{1,20}[0-9]{1,2}(?:-[a-z])?)"
                      r"_([a-z](?:[a-z0-9-]{0,38}[a-z0-9])?)(?![a-z0-9-])")
_CURRENTLY = re.compile(r"is currently [a-z ]{1,40}?cluster ([a-z](?:[a-z0-9-]{0,38}[a-z0-9])?)\. Please wait")
_GENERATED = re.compile(r"kubeconfig entry generated for ([a-z](?:[a-z0-9-]{0,38}[a-z0-9])?)\.")
_NO_SUCH = re.compile(r"No cluster named '([^'\s]{1,64})' in ([a-z][a-z0-9-]{4,28}[a-z0-9])")
_DID_YOU_MEAN = re.compile(r"Did you mean \[([a-z0-9-]{1,40})\] in \[([a-z0-9-]{1,30})\]\?")
_WORKLOAD_POOL = re.compile(r"([a-z][a-z0-9-]{4,28}[a-z0-9])\.svc\.id\.goog\[([^/\]\s]{1,63})/([^\]\s]{1,253})\]")
_ANY_POOL_MEMBER = re.compile(r"svc\.id\.goog\[([^/\]\s]{1,63})/([^\]\s]{1,253})\]")
_KSA_USER = re.compile(r"system:serviceaccount:([a-z0-9-]{1,63}):([a-z0-9.-]{1,253})")
_ACTIVATED = re.compile(r"Activated service account credentials for: \[([^\]\s]{3,254})\]")
_INGRESS_EVENT = re.compile(r"Kind:\"Ingress\", Namespace:\"([a-z0-9-]{1,63})\", Name:\"([a-z0-9.-]{1,253})\"")
_INGRESS_LOG = re.compile(r"\bIngress ([a-z0-9-]{1,63})/([a-z0-9.-]{1,253})(?![a-z0-9.-])")
_YAML_SA = re.compile(r"^serviceAccountName: ?\"?([a-z0-9.-]{1,253})\"?$")
_YAML_NS = re.compile(r"^namespace: ?\"?([a-z0-9-]{1,63})\"?$")
_CONSOLE_KINDS = ("deployment", "statefulset", "daemonset", "pod", "job", "cronjob", "service", "ingress",
                  "serviceaccount")
# gcloud flags that take a value (`--zone us-east1-d`); any other `--flag` without `=` is a switch
_VALUE_FLAGS = frozenset({"--zone", "--region", "--location", "--project", "--cluster", "--node-pool", "--format",
                          "--account", "--impersonate-service-account", "--configuration", "--verbosity",
                          "--cluster-version", "--node-version", "--image-type", "--machine-type", "--num-nodes",
                          "--service-account", "--workload-pool", "--workload-metadata", "--filter", "--flatten",
                          "--member", "--role", "--condition", "--network", "--subnetwork", "--release-channel",
                          "--key-file", "--update-addons", "--dns-endpoint"})


@dataclass
class _Found:
    specs: list = field(default_factory=list)  # ClusterSpec, in order of appearance
    projects: list = field(default_factory=list)  # from gcloud flags and config, console links: fill a cluster's
    locations: list = field(default_factory=list)  # missing project / location when there is one of each
    hinted: list = field(default_factory=list)  # (project, location) seen anywhere (resource paths): hints only
    ksa: tuple | None = None
    ingress: tuple | None = None  # (namespace or "", name)
    namespace: str = ""  # a -n / --namespace of a pasted kubectl command
    principal: str = ""  # the account a pasted gcloud command ran as
    pool: str = ""
    suggested: str = ""  # gcloud's "Did you mean [C] in [L]?"
    ignored: list = field(default_factory=list)


def _add(seq: list, value: str) -> None:
    if value and value not in seq:
        seq.append(value)


def _tokens(line: str) -> list[str]:
    return [w.strip("\"'") for w in line.split() if w.strip("\"'")]


def _flags(words: list[str], start: int) -> tuple[dict[str, str], list[str]]:
    """A command's `--flag value`, `--flag=value`, `-n value` and its positional words."""
    opts: dict[str, str] = {}
    positional: list[str] = []
    i = start
    while i < len(words):
        w = words[i]
        if w in ("|", "&&", ";", "||", ">", "2>&1"):
            break
        key, eq, val = w.partition("=")
        if key.startswith("-"):
            if eq:
                opts.setdefault(key, val)
            elif (key in _VALUE_FLAGS or key in ("-n", "--namespace", "--context")) and i + 1 < len(words):
                i += 1
                opts.setdefault(key, words[i])
        else:
            positional.append(w)
        i += 1
    return opts, positional


def _commands(t: _Text, f: _Found) -> None:
    """Pasted gcloud and kubectl command lines (continuation lines joined)."""
    joined, buf = [], ""
    for line in t.lines:
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        joined.append(buf + line)
        buf = ""
    if buf:
        joined.append(buf)
    for line in joined:
        if len(line) > 2000 or ("gcloud" not in line and "kubectl" not in line):
            continue
        words = _tokens(line)
        for i, w in enumerate(words):
            if w.endswith("gcloud"):
                _gcloud(words[i + 1:], f)
                break
            if w.endswith("kubectl") or w == "k":
                _kubectl(words[i + 1:], f)
                break


def _gcloud(words: list[str], f: _Found) -> None:
    opts, pos = _flags(words, 0)
    for key in ("--account", "--impersonate-service-account"):
        if opts.get(key) and not f.principal:
            f.principal = _principal(opts[key])
    if pos[:3] == ["config", "set", "project"] and len(pos) > 3:
        _add(f.projects, pos[3] if PROJECT_RE.match(pos[3]) else "")
        return
    if pos[:2] == ["config", "set"] and len(pos) > 3 and pos[2] in ("compute/zone", "compute/region"):
        _add(f.locations, pos[3] if LOCATION_RE.match(pos[3]) else "")
        return
    project = opts.get("--project", "")
    if project and not PROJECT_RE.match(project):
        f.ignored.append("project")
        project = ""
    _add(f.projects, project)
    location = opts.get("--location") or opts.get("--zone") or opts.get("--region") or ""
    if location and not LOCATION_RE.match(location):
        f.ignored.append("location")
        location = ""
    if pos[:1] == ["beta"] or pos[:1] == ["alpha"]:
        pos = pos[1:]
    if pos[:1] != ["container"]:
        return
    _add(f.locations, location)
    name = ""
    if pos[1:2] == ["clusters"] and len(pos) > 3:
        name = pos[3]
    elif pos[1:2] == ["node-pools"]:
        name = opts.get("--cluster", "")
    if name:
        spec = _valid_spec(name, location, project)
        if spec is None:
            f.ignored.append("cluster")
        else:
            f.specs.append(spec)


def _kubectl(words: list[str], f: _Found) -> None:
    opts, pos = _flags(words, 0)
    ns = opts.get("-n") or opts.get("--namespace") or ""
    if ns:
        if DNS_LABEL_RE.match(ns):
            f.namespace = f.namespace or ns
        else:
            f.ignored.append("namespace")
    ctx = opts.get("--context", "")
    m = _CONTEXT.fullmatch(ctx) if ctx else None
    if m:
        f.specs.append(ClusterSpec(m.group(3), m.group(2), m.group(1)))
    if len(pos) < 2 or pos[0] not in ("get", "describe", "edit", "delete"):
        return
    kind, _sep, name = pos[1].partition("/")
    if not name and len(pos) > 2:
        name = pos[2]
    kind = kind.lower().split(".")[0]
    if kind in ("ingress", "ingresses", "ing") and name and DNS_SUBDOMAIN_RE.match(name):
        f.ingress = f.ingress or (ns if DNS_LABEL_RE.match(ns) else "", name)
    elif kind in ("serviceaccount", "serviceaccounts", "sa") and name and ns:
        f.ksa = f.ksa or _ksa(ns, name)


def _urls(t: _Text, f: _Found) -> None:
    for url in t.urls[:50]:
        try:
            parts = urlsplit(url)
        except ValueError:
            continue
        if parts.hostname != "console.cloud.google.com":
            continue
        project = (parse_qs(parts.query).get("project") or [""])[0]
        project = project if PROJECT_RE.match(project) else ""
        _add(f.projects, project)
        seg = [s for s in parts.path.split("/") if s]
        if seg[:3] == ["kubernetes", "clusters", "details"] and len(seg) >= 5:
            spec = _valid_spec(seg[4], seg[3], project)
            if spec:
                f.specs.append(spec)
        elif len(seg) >= 6 and seg[0] == "kubernetes" and seg[1] in _CONSOLE_KINDS:
            spec = _valid_spec(seg[3], seg[2], project)
            if spec:
                f.specs.append(spec)
                if seg[1] == "ingress" and DNS_LABEL_RE.match(seg[4]) and DNS_SUBDOMAIN_RE.match(seg[5]):
                    f.ingress = f.ingress or (seg[4], seg[5])
                if seg[1] == "serviceaccount":
                    f.ksa = f.ksa or _ksa(seg[4], seg[5])


def _find(t: _Text) -> _Found:
    f = _Found()
    flat = t.flat
    if "projects/" in flat:
        for m in _CLUSTER_PATH.finditer(flat):
            project, location, name, pool = m.groups()
            name, pool = name.rstrip("."), (pool or "").rstrip(".")  # "…/clusters/payments." ends a sentence
            spec = _valid_spec(name, location, project)
            if spec is None:
                f.ignored.append("cluster")
                continue
            if not spec.project:
                f.ignored.append("project")
            f.specs.append(spec)
            if pool and CLUSTER_RE.match(pool):
                f.pool = f.pool or pool
        for m in _PROJECT_PATH.finditer(flat):
            _add(f.hinted, (m.group(1), ""))
    if "gke_" in flat:
        for m in _CONTEXT.finditer(flat):
            f.specs.append(ClusterSpec(m.group(3), m.group(2), m.group(1)))
    if "is currently" in flat:
        for m in _CURRENTLY.finditer(flat):
            f.specs.append(ClusterSpec(m.group(1)))
    if "kubeconfig entry generated for" in flat:
        for m in _GENERATED.finditer(flat):
            f.specs.append(ClusterSpec(m.group(1)))
    if "No cluster named" in flat:
        for m in _NO_SUCH.finditer(flat):
            spec = _valid_spec(m.group(1), "", m.group(2))
            if spec:
                f.specs.append(spec)
    m = _DID_YOU_MEAN.search(flat) if "Did you mean [" in flat else None
    if m and CLUSTER_RE.match(m.group(1)) and LOCATION_RE.match(m.group(2)):
        f.suggested = f"{m.group(2)}/{m.group(1)}"
    for m in _LOCATION_PATH.finditer(flat) if "/" in flat else ():
        _add(f.hinted, ("", m.group(1)))
    if "svc.id.goog[" in flat:
        for m in _WORKLOAD_POOL.finditer(flat):
            _add(f.hinted, (m.group(1), ""))
        for m in _ANY_POOL_MEMBER.finditer(flat):
            got = _ksa(m.group(1), m.group(2))
            if got is None:
                f.ignored.append("ksa")
            f.ksa = f.ksa or got
    if "system:serviceaccount:" in flat and f.ksa is None:
        for m in _KSA_USER.finditer(flat):
            f.ksa = f.ksa or _ksa(m.group(1), m.group(2))
    if "Activated service account credentials" in flat:
        m = _ACTIVATED.search(flat)
        f.principal = _principal(m.group(1)) if m else ""
    _commands(t, f)
    _urls(t, f)
    if f.ksa is None and "serviceAccountName:" in flat:
        sa = next((m.group(1) for ln in t.lines for m in [_YAML_SA.match(ln)] if m), "")
        ns = next((m.group(1) for ln in t.lines for m in [_YAML_NS.match(ln)] if m), "")
        f.ksa = _ksa(ns, sa) if sa and ns else None
    if f.ingress is None and "ngress" in flat:
        m = _INGRESS_EVENT.search(flat) or _INGRESS_LOG.search(flat)
        if m:
            f.ingress = (m.group(1), m.group(2))
        else:
            f.ingress = _describe_ingress(t)
    return f


def _describe_ingress(t: _Text) -> tuple | None:
    """`kubectl describe ingress` output: `Name: X` with `Namespace: Y` in the lines after it."""
    if "Default backend:" not in t.flat and "Rules:" not in t.flat and "ingress.kubernetes.io" not in t.flat:
        return None
    for i, line in enumerate(t.lines):
        if line.startswith("Name: "):
            name = line[6:].strip()
            for nxt in t.lines[i + 1:i + 5]:
                if nxt.startswith("Namespace: "):
                    ns = nxt[11:].strip()
                    if DNS_LABEL_RE.match(ns) and DNS_SUBDOMAIN_RE.match(name):
                        return ns, name
    return None


def _merge(specs: list[ClusterSpec]) -> list[ClusterSpec]:
    out: list[ClusterSpec] = []
    for s in specs:
        for i, o in enumerate(out):
            if s.name == o.name and (not s.location or not o.location or s.location == o.location) and (
                    not s.project or not o.project or s.project == o.project):
                out[i] = ClusterSpec(s.name, o.location or s.location, o.project or s.project)
                break
        else:
            out.append(s)
    return out


# ---------------------------------------------------------------------------------------------------
# The detectors: each finds the errors of its kinds in the text

@dataclass
class _Hit:
    kind: str
    start: int
    end: int
    args: dict = field(default_factory=dict)
    named: dict = field(default_factory=dict)
    principal: str = ""
    command: str = ""  # another command than the kind's (when the text does not allow the kind's own)
    ignored: list = field(default_factory=list)


_FORBIDDEN = re.compile(r'User "([^"]{1,256})" cannot ([A-Za-z*]{1,32}) (?:resource "([^"]{1,253})" in API group '
                        r'"([^"]{0,253})"(?: (?:in the namespace "([^"]{1,253})"|at the cluster scope))?'
                        r'|path "([^"]{1,300})"'
                        r'|([A-Za-z0-9./-]{1,253}) (?:in the namespace "([^"]{1,253})"|at the cluster scope))')
_PERMS = re.compile(r'[:.,]? {0,3}(?:requires one of \[([^\]]{0,600})\] permission|Required "([^"]{1,100})" permission)')


def _d_forbidden(t: _Text) -> list[_Hit]:
    if "cannot" not in t.flat or 'User "' not in t.flat:
        return []
    hits = []
    for m in _FORBIDDEN.finditer(t.flat):
        user, verb, res, group, ns, path, old_res, old_ns = m.groups()
        hit = _Hit("kubectl-forbidden", m.start(), m.end())
        head = max(t.flat.rfind("Error from server (Forbidden)", max(0, m.start() - 600), m.start()),
                   t.flat.rfind(" is forbidden:", max(0, m.start() - 300), m.start()))
        if head >= 0:
            hit.start = head
        tail = t.flat[m.end():m.end() + 700]
        pm = _PERMS.match(tail) if "permission" in tail else None
        if pm:
            perm = (re.findall(r'"([^"]{1,100})"', pm.group(1) or "") or [pm.group(2) or ""])[0]
            if PERMISSION_RE.match(perm):
                hit.named["permission"] = perm
            hit.end = m.end() + pm.end()
        if user == "system:anonymous":
            hit.kind = "kubectl-anonymous"
            hits.append(hit)
            continue
        ksa = _KSA_USER.fullmatch(user)
        if "@" in user:
            hit.principal = _principal(user)
            if not hit.principal:
                hit.ignored.append("principal")
        elif ksa and _ksa(ksa.group(1), ksa.group(2)):
            hit.named["kubernetes_service_account"] = f"{ksa.group(1)}/{ksa.group(2)}"
        elif re.fullmatch(r"[A-Za-z0-9@._:-]{1,128}", user):
            hit.named["kubernetes_user"] = user
        verb = verb.lower()
        if path is not None:
            hit.kind = "kubectl-forbidden-path"
            if verb in VERBS:
                hit.named["verb"] = verb
            if _PATH_RE.match(path):
                hit.named["path"] = path
            hits.append(hit)
            continue
        if old_res is not None:  # before Kubernetes 1.14: `cannot get jobs.batch in the namespace "default"`
            name, _sep, sub = old_res.partition("/")
            base, _sep, group = name.partition(".")
            res, ns = base + (f"/{sub}" if sub else ""), old_ns
        base, _sep, sub = res.partition("/")
        ok_res = bool(DNS_LABEL_RE.match(base)) and (not sub or bool(DNS_LABEL_RE.match(sub)))
        ok_group = not group or bool(DNS_SUBDOMAIN_RE.match(group))
        if verb in VERBS and ok_res and ok_group:
            hit.args = {"verb": verb, "resource": res, "group": group}
        else:  # the rbac command could not take these: the 403 diagnosis for the principal instead
            hit.command = "why-403"
            hit.ignored += [n for n, ok in (("verb", verb in VERBS), ("resource", ok_res), ("group", ok_group))
                            if not ok]
        if ns is None and "at the cluster scope" in t.flat[m.start():m.end()]:
            hit.named["scope"] = "cluster"
        if ns is not None:
            if DNS_LABEL_RE.match(ns):
                if hit.args:
                    hit.args["namespace"] = ns
            else:
                hit.ignored.append("namespace")
        hits.append(hit)
    return hits


_REQUIRED = re.compile(r"Required ([\"'])([^\"'\s]{1,100})\1 permission(?:\(s\)|s)?(?: for ([\"'])([^\"'\s]{1,300})\3)?"
                       r"|Required permission ([\"'])([^\"'\s]{1,100})\5 for ([\"'])([^\"'\s]{1,300})\7"
                       r"|Permission ([\"'])([^\"'\s]{1,100})\9 denied on resource ([\"'])([^\"'\s]{1,300})\11")
_ACTING_AS = re.compile(r"\(when acting as '([^'\s]{3,254})'\)")


def _d_required(t: _Text) -> list[_Hit]:
    if "ermission" not in t.flat:
        return []
    hits = []
    for m in _REQUIRED.finditer(t.flat):
        g = m.groups()
        perm, res = next((g[i], g[i + 2] or "") for i in (1, 5, 9) if g[i] is not None)
        before, after = t.near(m.start(), 200, 0), t.flat[m.end():m.end() + 200]
        if 'user "' in before and " cannot " in before:
            continue  # the IAM permission GKE names in a Kubernetes refusal: see _d_forbidden
        hit = _Hit("permission-denied", m.start(), m.end())
        acting = _ACTING_AS.search(after)
        if acting and not EMAIL_RE.match(acting.group(1)):
            acting = None
        if "retry budget exhausted" in before:
            hit.kind = "retry-budget-exhausted"
            hit.start = t.lower.rfind("retry budget exhausted", 0, m.start())
        elif (acting and acting.group(1).endswith(("@cloudservices.gserviceaccount.com",
                                                  "@container-engine-robot.iam.gserviceaccount.com"))):
            hit.kind = "service-agent-missing"
            hit.named["acting_as"] = acting.group(1)
        elif perm == "iam.serviceAccounts.getAccessToken":
            continue  # Workload Identity, or nothing this bot diagnoses: see _d_wi
        elif perm.startswith("container."):
            hit.kind = "cluster-permission-denied"
        if PERMISSION_RE.match(perm):
            hit.args["permission"] = perm
        else:
            hit.ignored.append("permission")
        if res and _valid_resource(res.rstrip(".")):
            hit.args["resource"] = res.rstrip(".")
        elif res:
            hit.ignored.append("resource")
        hits.append(hit)
    for m in re.finditer(r"Retry budget exhausted: Google Compute Engine", t.flat, re.I):
        if not any(h.kind == "retry-budget-exhausted" for h in hits):
            hits.append(_Hit("retry-budget-exhausted", m.start(), m.end()))
    return hits


def _simple(kind: str, pattern: str, flags: int = 0, gate: str = ""):
    rx = re.compile(pattern, flags)

    def detect(t: _Text) -> list[_Hit]:
        if gate and gate not in t.lower:
            return []
        m = rx.search(t.flat)
        return [_Hit(kind, m.start(), m.end())] if m else []
    detect.__name__ = f"_d_{kind}"
    return detect


_RECREATION = re.compile(r"Node pool ([\"'])([^\"'\s]{1,64})\1 requires recreation")


def _d_recreation(t: _Text) -> list[_Hit]:
    if "requires recreation" not in t.flat:
        return []
    hits = []
    for m in _RECREATION.finditer(t.flat):
        hit = _Hit("node-pool-recreation", m.start(), m.end())
        if CLUSTER_RE.match(m.group(2)):
            hit.args["pool"] = m.group(2)
        else:
            hit.ignored.append("pool")
        hits.append(hit)
    return hits


_PROJECT_LOOKUP = re.compile(r"Project lookup error: permission denied on resource '([^'\s]{1,100})'", re.I)
_NOT_FOUND = re.compile(r"(?:Not found: |The resource \"|Not Found for url: https://container\.googleapis\.com/v1(?:beta1)?/)((?:projects|//container\.googleapis\.com/projects)/[^\s\"',]{1,300})",
                        re.I)
_GCLOUD_404 = re.compile(r"\(gcloud\.container\.[a-z.-]{1,60}\) ResponseError: code=404")
_GCLOUD_404_PROSE = re.compile(r"gcloud container [^\n]{0,80}?(?:エラー ?404|404 ?エラー|error 404|404 not found)", re.I)


def _d_not_found(t: _Text) -> list[_Hit]:
    hits = []
    if "project lookup error" in t.lower:
        m = _PROJECT_LOOKUP.search(t.flat)
        if m:
            hit = _Hit("project-not-found", m.start(), m.end())
            res = m.group(1)
            if _valid_resource(res):
                hit.named["target"] = res
            else:
                hit.ignored.append("resource")
            hits.append(hit)
    if "not found" in t.lower or "404" in t.flat:
        container = "gcloud.container" in t.flat or "container.googleapis.com" in t.lower
        for m in _NOT_FOUND.finditer(t.flat):
            res = m.group(1).rstrip(".")
            if "/clusters/" not in res and not container:
                continue  # another API's 404 (a secret, a bucket): not a cluster lookup
            hit = _Hit("cluster-not-found", m.start(), m.end())
            if _valid_resource(res.replace("//container.googleapis.com/", "")):
                hit.named["target"] = res
            hits.append(hit)
            break
        if not any(h.kind == "cluster-not-found" for h in hits):
            m = _GCLOUD_404.search(t.flat) or _GCLOUD_404_PROSE.search(t.flat)
            if m:
                hits.append(_Hit("cluster-not-found", m.start(), m.end()))
    return hits


_UNAUTHORIZED = re.compile(
    r"You must be logged in to the server(?: \((?:Unauthorized|the server has asked for the client to provide "
    r"credentials)\))?"
    r"|the server has asked for the client to provide credentials"
    r"|\"reason\": ?\"Unauthorized\""
    r"|\(401\)\s{0,4}Reason: Unauthorized"
    r"|HTTP response code: 401"
    r"|(?:Kubernetes cluster unreachable|Error|error): Unauthorized(?![A-Za-z])")


def _d_unauthorized(t: _Text) -> list[_Hit]:
    if "nauthorized" not in t.flat and "logged in" not in t.flat and "provide credentials" not in t.flat and (
            "code: 401" not in t.flat):
        return []
    m = _UNAUTHORIZED.search(t.flat)
    if m is None and re.search(r"\"kind\": ?\"Status\"", t.flat) and re.search(r"\"code\": ?401\b", t.flat):
        m = re.search(r"\"kind\": ?\"Status\"", t.flat)
    if m is None:
        return []
    start, end = m.start(), m.end()
    kind = t.flat.rfind('"kind"', max(0, start - 300), start + 1)  # quote the whole Status object
    js = t.flat.rfind("{", max(0, kind - 3), kind) if kind >= 0 else -1
    if js >= 0:
        start = js
        close = t.flat.find("}", end, end + 300)
        end = close + 1 if close > 0 else end
    return [_Hit("unauthorized", start, end)]


_PLUGIN = re.compile(r"gke-gcloud-auth-plugin[^\n]{0,120}?(?:not found|not executable|not installed|no such file)"
                     r"|The gcp auth plugin has been removed"
                     r"|the gcp auth plugin is deprecated"
                     r"|no Auth Provider found for name \"gcp\"", re.I)


def _d_plugin(t: _Text) -> list[_Hit]:
    if "auth-plugin" not in t.lower and "auth plugin" not in t.lower and "auth provider" not in t.lower:
        return []
    m = _PLUGIN.search(t.flat)
    if m is None:
        return []
    hit = _Hit("auth-plugin-missing", m.start(), m.end())
    head = t.lower.rfind("critical: action required", 0, m.start() + 1)
    if head >= 0 and m.start() - head < 40:
        hit.start = head
    return [hit]


_DIAL = re.compile(r"dial tcp ([0-9A-Za-z.:\[\]*-]{3,80}):(\d{1,5}): (i/o timeout|connect: connection refused|"
                   r"connect: no route to host|connect: network is unreachable)")
_UNREACHABLE = re.compile(r"Unable to connect to the server: (?:net/http: (?:TLS handshake timeout|request canceled"
                          r"[^\n]{0,80})|context deadline exceeded|dial tcp [^\s]{1,80}: [a-z/: ]{1,40})")
_METADATA_HOSTS = ("169.254.169.254", "169.254.169.252", "127.0.0.1", "metadata.google.internal")
_NOT_GOOGLE = ("/metadata/identity", "/metadata/instance", "api-version=", "/latest/meta-data", "/latest/api/token",
               "azure", "amazonaws", "aws ")


def _d_network(t: _Text) -> list[_Hit]:
    """dial errors: kubectl to the control plane (why-401), the metadata server to the control plane and
    workloads to the metadata server (wi)."""
    if "dial tcp" not in t.flat and "Unable to connect to the server" not in t.flat and "metadata" not in t.lower:
        return []
    hits = []
    not_google = any(w in t.lower for w in _NOT_GOOGLE)
    m = _UNREACHABLE.search(t.flat)
    if m and not not_google and "gke-gcloud-auth-plugin" not in t.flat:
        hits.append(_Hit("control-plane-unreachable", m.start(), m.end()))
    for m in _DIAL.finditer(t.flat):
        host, port, what = m.groups()
        if host.startswith(("169.254.169.25", "127.0.0.1")):
            if not not_google:
                kind = "wi-metadata-timeout" if what == "i/o timeout" else "wi-metadata-unreachable"
                hits.append(_Hit(kind, m.start(), m.end()))
            continue
        if port != "443" or not_google:
            continue
        before = t.near(m.start(), 200, 0)
        kubectl = any(w in before for w in ("unable to connect to the server", "api group list", "get \"https://",
                                            "post \"http", "rpc error", "get 'https://"))
        if what == "connect: connection refused" and not kubectl:
            hits.append(_Hit("wi-control-plane", m.start(), m.end()))
        elif not hits or hits[0].kind != "control-plane-unreachable":
            hits.append(_Hit("control-plane-unreachable", m.start(), m.end()))
    if "metadata.google.internal" in t.lower and not not_google:
        m = re.search(r"lookup metadata\.google\.internal[^\n]{0,80}?(?:no such host|server misbehaving|i/o timeout)"
                      r"|Failed to resolve '?metadata\.google\.internal|NameResolutionError[^\n]{0,200}?metadata"
                      r"\.google\.internal|host='metadata\.google\.internal', port=80\): Max retries exceeded",
                      t.flat, re.I)
        if m:
            hits.append(_Hit("wi-metadata-unreachable", m.start(), m.end()))
    return hits


_WI_DENIED = re.compile(r"Unable to generate access token; IAM returned 403[^\n]{0,40}"
                        r"|Permission ['\"]iam\.serviceAccounts\.getAccessToken['\"] denied"
                        r"|GenerateAccessToken\(\"[^\"]{0,254}\", \"[^\"]{0,100}\"\): [^\n]{0,40}?(?:403|permission)",
                        re.I)
_WI_CONTEXT = ("metadata", "svc.id.goog", "gke", "iam.gke.io", "kubernetes", "unable to generate access token")
_TIMEOUT = re.compile(r"Retry limit exceeded\. Failed to wait for metadata server to be available"
                      r"|(?:169\.254\.169\.254|metadata\.google\.internal)[^\s]{0,300}:? (?:net/http: )?"
                      r"(?:timeout awaiting response headers|context deadline exceeded|Client\.Timeout exceeded"
                      r"|i/o timeout)"
                      r"|Compute Engine Metadata server unavailable"
                      r"|ComputeEngineCredentials cannot find the metadata server"
                      r"|metadata server[^\n.]{0,60}?(?:timed out|timeout)", re.I)
_MD_ERROR = re.compile(r"GKE Metadata Server(?: encountered an error|: Internal Server Error)"
                       r"|Unexpected Error code \d{3} trying to get security access token from Compute Engine "
                       r"metadata"
                       r"|Failed to retrieve http://(?:metadata\.google\.internal|169\.254\.169\.254)/computeMetadata"
                       r"[^\s]{0,400} from the Google Compute Engine ?metadata service", re.I)
_NO_CREDS = re.compile(r"could not find default credentials"
                       r"|(?:set|define|defined|configure)[^.\n]{0,40}GOOGLE_APPLICATION_CREDENTIALS"
                       r"|GOOGLE_APPLICATION_CREDENTIALS[^.\n]{0,40}(?:must be|not set|is not defined)"
                       r"|GOOGLE_APPLICATION_CREDENTIALS ?の(?:構成|設定)を求める"
                       r"|Request is missing required authentication credential"
                       r"|Could not automatically determine credentials"
                       r"|The Application Default Credentials are not available"
                       r"|Could not load the default credentials"
                       r"|Your default credentials were not found"
                       r"|DefaultCredentialsError", re.I)
_CRASH = re.compile(r"gke-metadata-server[a-z0-9-]{0,20}[^\n]{0,60}?(?:CrashLoopBackOff|OOMKilled)", re.I)


def _d_wi(t: _Text) -> list[_Hit]:
    low = t.lower
    hits = []
    if "iam service account credentials api has not been used" in low or (
            "iamcredentials.googleapis.com" in low and ("disabled" in low or "has not been used" in low)):
        m = re.search(r"IAM Service Account Credentials API has not been used in project[^\n]{0,60}?disabled"
                      r"|iamcredentials\.googleapis\.com", t.flat, re.I)
        if m:
            hits.append(_Hit("wi-iamcredentials-disabled", m.start(), m.end()))
    if "access token" in low or "getaccesstoken" in low:
        m = _WI_DENIED.search(t.flat)
        if m and any(w in low for w in _WI_CONTEXT):
            hits.append(_Hit("wi-permission-denied", m.start(), m.end()))
    if "generic::not_found" in low and "unable to find pod" in low:
        m = re.search(r"Unable to find pod: generic::not_found[^\n]{0,160}", t.flat, re.I)
        hits.append(_Hit("wi-pod-not-found", m.start(), m.end()))
    if "gke-metadata-server" in low:
        m = _CRASH.search(t.flat)
        if m:
            hits.append(_Hit("wi-metadata-server-crash", m.start(), m.end()))
    if "metadata" in low and not any(w in low for w in _NOT_GOOGLE):
        m = _TIMEOUT.search(t.flat)
        if m:
            hits.append(_Hit("wi-metadata-timeout", m.start(), m.end()))
        m = _MD_ERROR.search(t.flat)
        if m:
            hits.append(_Hit("wi-metadata-error", m.start(), m.end()))
    if "credential" in low or "GOOGLE_APPLICATION_CREDENTIALS" in t.flat:
        m = _NO_CREDS.search(t.flat)
        if m and m.group(0).startswith("Request is missing") and "gcloud" in low:
            m = None  # gcloud on a workstation without a login: not a workload's credentials
        if m:
            hits.append(_Hit("wi-no-credentials", m.start(), m.end()))
    return hits


_SERVICE_AGENT = re.compile(r"has no edit permission"
                            r"|service-\d{1,20}@container-engine-robot\.iam\.gserviceaccount\.com[^\n]{0,80}?"
                            r"(?:does not exist|not found|is missing|does not have|lacks|deleted)"
                            r"|Kubernetes Engine Service Agent[^\n]{0,40}?(?:missing|not found|removed)"
                            r"|アカウントに(?:対する)?編集権限がない", re.I)


def _d_project(t: _Text) -> list[_Hit]:
    low, hits = t.lower, []
    if "edit permission" in low or "container-engine-robot" in low or "service agent" in low or "編集権限" in t.flat:
        m = _SERVICE_AGENT.search(t.flat)
        if m:
            hits.append(_Hit("service-agent-missing", m.start(), m.end()))
    if "kubernetes engine api has not been used" in low or (
            "container.googleapis.com" in low and "service_disabled" in low):
        m = re.search(r"Kubernetes Engine API has not been used in project[^\n]{0,80}?disabled"
                      r"|SERVICE_DISABLED", t.flat, re.I)
        if m:
            hits.append(_Hit("container-api-disabled", m.start(), m.end()))
    if "defaultnodeserviceaccount" in low:
        m = re.search(r"Grant roles/container\.defaultNodeServiceAccount role to Node service account[^\n]{0,80}",
                      t.flat)
        if m:
            hits.append(_Hit("node-sa-permissions", m.start(), m.end()))
    return hits


_STATUS_LINE = re.compile(r"HTTP/(?:1\.[01]|2(?:\.0)?) (30[12378])(?: [A-Za-z ]{1,30})?"
                          r"|\b(30[12378]) (?:Moved Permanently|Found|FOUND|See Other|Temporary Redirect|"
                          r"Permanent Redirect)"
                          r"|redirects? (?:with|to|using) (?:a |an )?(30[12378])\b"
                          r"|returns? (?:a |an )?(30[12378])\b"
                          r"|(?<![0-9])(30[12378]) ?(?:の)?リダイレクト", re.I)
_HEALTH_WORDS = ("health check", "healthcheck", "healthz", "/health", "/ping", "/ready", "ヘルスチェック",
                 "load balancer", "loadbalancer", "ingress", "unhealthy", "backend service")
_UNHEALTHY = re.compile(r"ingress\.kubernetes\.io/backends: ?'?\{[^}]{0,2000}?\"UNHEALTHY\""
                        r"|Some backend services are in UNHEALTHY state"
                        r"|healthState: UNHEALTHY"
                        r"|Error: Server Error The server encountered a temporary error and could not complete your "
                        r"request"
                        r"|failed_to_pick_backend"
                        r"|ヘルスチェック[^\n。]{0,40}?(?:異常|失敗|通らない|通りません)")
_UNHEALTHY_PROSE = re.compile(r"\bunhealthy\b", re.I)
_SYNC = re.compile(r"Translation failed: [^\n]{0,200}|Error syncing to GCP: [^\n]{0,200}"
                   r"|Error during sync: [^\n]{0,200}")
_NO_ADDRESS_HEADER = re.compile(r"^NAME (?:CLASS )?HOSTS ADDRESS PORTS AGE$")


def _d_ingress(t: _Text) -> list[_Hit]:
    low, hits = t.lower, []
    if any(w in low for w in _HEALTH_WORDS):
        m = _STATUS_LINE.search(t.flat) if "30" in t.flat else None
        if m:
            hit = _Hit("ingress-health-check-redirect", m.start(), m.end())
            hit.named["status"] = next(g for g in m.groups() if g)
            hits.append(hit)
    if "unhealthy" in low or "temporary error" in low or "failed_to_pick_backend" in low or "ヘルスチェック" in t.flat:
        m = _UNHEALTHY.search(t.flat)
        if m is None and any(w in low for w in ("ingress", "load balancer", "backend service", "health check")):
            m = _UNHEALTHY_PROSE.search(t.flat)
        if m:
            hits.append(_Hit("ingress-unhealthy", m.start(), m.end()))
    if "translation failed" in low or "error syncing to gcp" in low or "error during sync" in low:
        m = _SYNC.search(t.flat)
        if m:
            hits.append(_Hit("ingress-sync-error", m.start(), m.end()))
    if "ADDRESS" in t.flat or "Address:" in t.flat:
        hit = _no_address(t)
        if hit:
            hits.append(hit)
    return hits


def _no_address(t: _Text) -> _Hit | None:
    for i, line in enumerate(t.lines):
        if line.startswith("Address: ") and line[9:].strip() in ("", "Default backend:", "Ingress Class:") or (
                line == "Address:" and i + 1 < len(t.lines) and t.lines[i + 1].startswith(("Default backend",
                                                                                         "Ingress Class"))):
            names = [j for j in range(max(0, i - 4), i) if t.lines[j].startswith("Name:")]
            if names:
                return _Hit("ingress-no-address", t.starts[names[-1]], t.starts[i] + len(line))
        if _NO_ADDRESS_HEADER.match(line):
            width = len(line.split())
            for row in t.lines[i + 1:i + 20]:
                cells = row.split()
                if not cells:
                    break
                if len(cells) == width - 1:
                    hit = _Hit("ingress-no-address", t.starts[i], t.starts[i] + len(line) + 1 + len(row))
                    if DNS_SUBDOMAIN_RE.match(cells[0]):
                        hit.named["ingress"] = cells[0]
                    return hit
    return None


_DETECTORS = (
    _d_wi, _simple("deploy-patch-failed", r"DeployPatch failed", gate="deploypatch"), _d_plugin, _d_forbidden,
    _d_recreation, _simple("incompatible-operation", r"Cluster is running incompatible operation[^\n]{0,80}"
                           r"|Operation operation-[0-9a-z-]{1,80} is currently [a-z ]{1,40}?cluster[^\n]{0,80}",
                           re.I, gate="operation"),
    _d_required, _d_project, _d_not_found, _d_unauthorized, _d_network, _d_ingress,
)


# ---------------------------------------------------------------------------------------------------
# Putting it together

def recognize_all(text: str) -> list[Recognition]:
    """Every kind of error recognised in the text, the most telling first (one Recognition per kind)."""
    t = _Text(text)
    if not t.flat.strip():
        return []
    hits: list[_Hit] = []
    for detect in _DETECTORS:
        hits.extend(detect(t))
    if not hits:
        return []
    found = _find(t)
    specs = _merge(found.specs)
    if len(found.projects) == 1:
        specs = [s if s.project else ClusterSpec(s.name, s.location, found.projects[0]) for s in specs]
    if len(found.locations) == 1:
        specs = [s if s.location else ClusterSpec(s.name, found.locations[0], s.project) for s in specs]
    specs = _merge(specs)
    cluster = specs[0] if len(specs) == 1 else None
    seen, out = set(), []
    for hit in sorted(hits, key=lambda h: (_RANK[h.kind], h.start)):
        if hit.kind in seen:
            continue
        seen.add(hit.kind)
        out.append(_recognition(t, hit, found, cluster, specs))
    return out


def recognize(text: str) -> Recognition | None:
    """The best recognition of the text, or None when the bot does not recognise it."""
    got = recognize_all(text)
    return got[0] if got else None


def _recognition(t: _Text, hit: _Hit, found: _Found, cluster: ClusterSpec | None,
                 specs: list[ClusterSpec]) -> Recognition:
    kind = KINDS[hit.kind]
    command = hit.command or kind.command
    args, named, ignored = dict(hit.args), dict(hit.named), list(hit.ignored)
    if command == "wi":
        if found.ksa:
            args["namespace"], args["ksa"] = found.ksa
        ignored += [i for i in found.ignored if i == "ksa"]
    elif command == "ingress":
        ing = found.ingress or (("", named["ingress"]) if named.get("ingress") else None)
        if ing and (ing[0] or found.namespace):
            args["namespace"], args["ingress"] = ing[0] or found.namespace, ing[1]
            named.pop("ingress", None)
        elif ing:
            named["ingress"] = ing[1]
    elif command == "why-400" and "pool" not in args and found.pool and hit.kind == "node-pool-recreation":
        args["pool"] = found.pool
    if hit.kind == "cluster-not-found" and found.suggested:
        named["suggested"] = found.suggested
    principal = hit.principal or (found.principal if command in ("why-403", "why-401") else "")
    if command not in ("why-403", "why-401", "rbac"):
        principal = ""  # the other commands take no principal
    ignored += [i for i in found.ignored if i in ("cluster", "project", "location", "namespace")
                and (i != "namespace" or command in ("rbac", "ingress"))]
    missing = tuple(n for n in kind.needs if n in ("namespace", "ksa", "verb", "resource") and
                    command == kind.command and not args.get(n))
    projects = found.projects + [p for p, _l in found.hinted if p]
    locations = found.locations + [loc for _p, loc in found.hinted if loc]
    project = cluster.project if cluster and cluster.project else (projects[0] if projects else "")
    location = cluster.location if cluster and cluster.location else (locations[0] if locations else "")
    return Recognition(
        kind=hit.kind, command=command, cluster=cluster, args=args, principal=principal,
        quote=t.quote(hit.start, hit.end), project=project, location=location,
        clusters=tuple(specs), named=named, missing=missing, ignored=tuple(dict.fromkeys(ignored)),
        truncated=t.truncated)


# ---------------------------------------------------------------------------------------------------
# `/gke explain [CLUSTER] ERROR TEXT…`

_NOT_A_CLUSTER = frozenset({
    "kubectl", "gcloud", "helm", "terraform", "curl", "k", "error", "warning", "critical", "fatal", "panic",
    "unable", "the", "you", "pods", "pod", "ingress", "service", "node", "google", "kubernetes", "go", "java",
    "python", "deployment", "gke-gcloud-auth-plugin", "dial", "failed", "exception", "traceback", "caused",
    "permission", "forbidden", "unauthorized", "apiversion", "kind", "metadata", "status", "could", "retry",
    "and", "when", "with", "from", "this", "that", "in", "on", "at", "is", "it", "a", "an", "my", "our", "we", "i",
    "hi", "hello", "help", "please", "why", "what", "how", "error:", "info", "debug", "trace", "get", "list",
})


def split_leading_cluster(text: str) -> tuple[ClusterSpec | None, str]:
    """`/gke explain [CLUSTER] ERROR TEXT…`: (the cluster the first word names, the rest), or (None, text)
    when the first word is not a cluster reference (NAME, LOCATION/NAME or PROJECT/LOCATION/NAME) or is a
    word errors start with (`kubectl`, `error:` …). A bare NAME is only a candidate: the edge checks it
    against the binding's clusters and, when it is none of them, reads the whole text as the error."""
    head, _sep, rest = (text or "").lstrip().partition(" ")
    if "\n" in head:
        head, _sep2, more = head.partition("\n")
        rest = more + (" " + rest if rest else "")
    parts = head.split("/")
    if not rest.strip() or len(parts) > 3 or not all(parts) or head.lower() in _NOT_A_CLUSTER:
        return None, text
    name, loc, proj = parts[-1], parts[-2] if len(parts) >= 2 else "", parts[0] if len(parts) == 3 else ""
    if not CLUSTER_RE.match(name) or (loc and not LOCATION_RE.match(loc)) or (proj and not PROJECT_RE.match(proj)):
        return None, text
    return ClusterSpec(name, loc, proj), rest.strip()


__all__ = ["KINDS", "MAX_INPUT", "Kind", "Recognition", "kinds", "normalize", "recognize", "recognize_all",
           "redact", "resource_text", "split_leading_cluster"]
