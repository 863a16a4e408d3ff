"""The `/gke` command grammar. Pure: validates everything before any API call or job.

Messages are in the reader's language (bot.i18n): parse under `with language(lang)` to get a GrammarError
the asker can read. `explain` takes the rest of the text as it is (a pasted error, newlines kept).
"""
from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field

from bot.i18n import N_, _
from checks.i18n import normalize as normalize_language
from checks.i18n import supported
from checks.names import (DNS_LABEL_RE, DNS_SUBDOMAIN_RE, LOCATION_RE, PROJECT_RE, cluster_problem,
                          normalize_principal)
from checks.resolve import ClusterSpec

DIAGNOSES = ("why-403", "why-401", "why-400", "why-404", "wi", "rbac", "ingress", "doctor")
COMMANDS = DIAGNOSES + ("explain", "audit", "help")
MAX_TEXT = 500
MAX_EXPLAIN = 12000  # a pasted error (Slack sends long slash-command texts); the recognizer reads 8192 of it
LANGS = ("ja", "en")

# (syntax, N_(what it answers)): shown as "`/gke SYNTAX` — WHAT" in the reader's language
USAGE = {
    "why-403": ("why-403 CLUSTER [--as PRINCIPAL]", N_("403 Forbidden: IAM, service agents, RBAC")),
    "why-401": ("why-401 CLUSTER [--as PRINCIPAL]", N_("401 Unauthorized: auth plugin, tokens, endpoint access")),
    "why-400": ("why-400 CLUSTER", N_("400 errors: node pools that need recreation, version skew")),
    "why-404": ("why-404 CLUSTER", N_("404 Not found: wrong project/location, stale credentials")),
    "wi": ("wi CLUSTER NAMESPACE/KSA", N_("Workload Identity for a Kubernetes service account")),
    "rbac": ("rbac CLUSTER VERB RESOURCE [-n NAMESPACE] [--as PRINCIPAL]", N_("can the principal do it?")),
    "ingress": ("ingress CLUSTER [NAMESPACE/NAME]", N_("why a GCE Ingress has no address or is unhealthy")),
    "doctor": ("doctor CLUSTER", N_("every cluster-level check")),
    "explain": ("explain [CLUSTER] ERROR TEXT…", N_("paste an error: I recognise it and run the matching diagnosis")),
    "audit": ("audit [N]", N_("the latest remediation audit entries (approvers)")),
    "help": ("help [COMMAND]", N_("this help")),
}
CLUSTER_FORMS = N_("CLUSTER is `NAME`, `LOCATION/NAME` or `PROJECT/LOCATION/NAME`; `--project P`, `--location L` "
                   "also work. `--lang ja|en` answers in Japanese or English.")


def usage(name: str) -> str:
    """`SYNTAX  — what it answers`, in the reader's language."""
    syntax, what = USAGE[name]
    return f"{syntax}  — {_(what)}"


def cluster_forms() -> str:
    return _(CLUSTER_FORMS)


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
    text: str = ""  # the normalised command line, for display (explain: a one-line, shortened form)
    lang: str = ""  # `--lang ja|en`: the language of this answer ("" = the asker's)

    def to_json(self) -> dict:
        d = asdict(self)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Command":
        spec = d.get("cluster")
        return cls(d["name"], ClusterSpec(**spec) if spec else None, d.get("principal", ""), d.get("args", {}),
                   d.get("text", ""), d.get("lang", ""))

    @property
    def source(self) -> str:
        """The text to parse again into this command (what a job carries): explain keeps the pasted error."""
        if self.name == "explain":
            return "explain " + self.args.get("text", "")
        return self.text


def _closest(word: str) -> str:
    m = difflib.get_close_matches(word.lower(), COMMANDS, n=1, cutoff=0.5)
    return m[0] if m else ""


def _cluster(text: str, project: str, location: str) -> ClusterSpec:
    parts = text.split("/")
    if len(parts) > 3 or not all(parts):
        raise GrammarError(_("That is not a cluster reference.") + " " + cluster_forms())
    name = parts[-1]
    loc = parts[-2] if len(parts) >= 2 else ""
    proj = parts[0] if len(parts) == 3 else ""
    if project and proj and project != proj:
        raise GrammarError(_("The project is given twice, differently."))
    if location and loc and location != loc:
        raise GrammarError(_("The location is given twice, differently."))
    proj, loc = proj or project, loc or location
    why = cluster_problem(name)
    if why:
        raise GrammarError(_("That is not a valid cluster name: {why}.").format(why=why))
    if proj and not PROJECT_RE.match(proj):
        raise GrammarError(_("That is not a valid project id: 6–30 lowercase letters, digits and hyphens, "
                             "starting with a letter."))
    if loc and not LOCATION_RE.match(loc):
        raise GrammarError(_("That is not a valid location: a region such as `europe-west4` or a zone such as "
                             "`europe-west4-a`."))
    return ClusterSpec(name=name, location=loc, project=proj)


def _ns_name(text: str, message: str) -> tuple[str, str]:
    ns, sep, name = text.partition("/")
    if not sep or not DNS_LABEL_RE.match(ns) or not DNS_SUBDOMAIN_RE.match(name):
        raise GrammarError(message)
    return ns, name


_DASHES = str.maketrans({"\u2014": "--", "\u2013": "--"})
_LANG_RE = re.compile(r"^(?:--|\u2014|\u2013)lang(?:=|\s+)(\S+)(?:\s+|$)", re.IGNORECASE)


def _lang(value: str) -> str:
    if not supported(value):
        raise GrammarError(_("`--lang` is `ja` (Japanese) or `en` (English)."))
    return normalize_language(value)


def lang_flag(text: str) -> str:
    """The `--lang` a text asks for ("ja", "en" or ""), read without parsing the rest: for answering a command
    that does not parse in the language it asked for."""
    words = (text or "").translate(_DASHES).split()
    for i, w in enumerate(words[:64]):
        key, eq, val = w.partition("=")
        if key == "--lang":
            val = val if eq else (words[i + 1] if i + 1 < len(words) else "")
            return normalize_language(val) if supported(val) else ""
    return ""


def _explain(rest: str) -> Command:
    """`explain [--lang L] [CLUSTER] ERROR TEXT…`: the error is kept as pasted (bot.explain reads it)."""
    lang = ""
    rest = rest.strip()
    m = _LANG_RE.match(rest)
    if m:
        lang = _lang(m.group(1))
        rest = rest[m.end():].strip()
    if not rest:
        raise GrammarError(_("Paste the error after `explain`: `/gke explain [CLUSTER] ERROR TEXT…`."))
    first = re.sub(r"[<>&`\s]+", " ", rest.splitlines()[0]).strip()
    shown = "explain " + (first if len(first) <= 60 else first[:59] + "…")
    return Command("explain", None, "", {"text": rest}, shown.strip(), lang)


def parse(text: str) -> Command:
    """Parse the text after `/gke`. Raises GrammarError with a message fit for the user."""
    first = re.match(r"\s*(\S+)", text or "")
    if first and first.group(1).lower() == "explain":
        if len(text) > MAX_EXPLAIN:
            raise GrammarError(_("That error text is too long (over {n} characters): paste the lines with the "
                                 "error.").format(n=MAX_EXPLAIN))
        return _explain(text[first.end():])
    if len(text) > MAX_TEXT:
        raise GrammarError(_("That command is too long (over {n} characters).").format(n=MAX_TEXT))
    # Slack clients may turn "--" into an em or en dash.
    words = text.translate(_DASHES).split()
    if not words:
        return Command("help", text="help")
    name = words[0].lower()
    if name not in COMMANDS:
        near = _closest(name)
        raise GrammarError(_("Unknown command.") + (" " + _("Did you mean `{command}`?").format(command=near)
                                                    if near else ""), near)
    opts: dict[str, str] = {}
    positional: list[str] = []
    flags = {"--project": "project", "--location": "location", "--as": "as", "-n": "namespace",
             "--namespace": "namespace", "--zone": "location", "--region": "location", "--lang": "lang"}
    i = 1
    while i < len(words):
        w = words[i]
        key, eq, val = w.partition("=")
        if key in flags:
            if not eq:
                if i + 1 >= len(words):
                    raise GrammarError(_("`{option}` needs a value.").format(option=key))
                i += 1
                val = words[i]
            opts[flags[key]] = val
        elif w.startswith("-"):
            raise GrammarError(_("Unknown option.") + f" `{usage(name)}`")
        else:
            positional.append(w)
        i += 1
    lang = _lang(opts["lang"]) if "lang" in opts else ""
    if name == "help":
        topic = positional[0].lower() if positional else ""
        return Command("help", args={"topic": topic if topic in COMMANDS else ""}, text="help", lang=lang)
    if name == "audit":
        n = positional[0] if positional else "10"
        if not n.isdigit() or not 1 <= int(n) <= 100:
            raise GrammarError(_("`audit N` takes a number from 1 to 100."))
        return Command("audit", args={"n": int(n)}, text=f"audit {n}", lang=lang)
    if not positional:
        raise GrammarError(_("Which cluster? Usage: `{usage}`.").format(usage=usage(name)) + " " + cluster_forms())
    spec = _cluster(positional[0], opts.get("project", ""), opts.get("location", ""))
    principal = ""
    if "as" in opts:
        try:
            principal = normalize_principal(opts["as"])
        except ValueError as exc:
            raise GrammarError(_("`--as`: {problem}.").format(problem=exc)) from None
    args: dict = {}
    rest = positional[1:]
    if name == "wi":
        if len(rest) != 1:
            raise GrammarError(_("Usage: `{usage}`").format(usage=usage("wi")))
        args["namespace"], args["ksa"] = _ns_name(rest[0], _(
            "The Kubernetes service account is NAMESPACE/NAME with Kubernetes names (lowercase letters, digits, "
            "'-', '.')."))
    elif name == "rbac":
        if len(rest) != 2:
            raise GrammarError(_("Usage: `{usage}`").format(usage=usage("rbac")))
        verb, resource = rest[0].lower(), rest[1].lower()
        if verb not in {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "*",
                        "impersonate", "bind", "escalate", "use", "approve"}:
            raise GrammarError(_("That is not a Kubernetes verb (get, list, watch, create, update, patch, delete…)."))
        # kubectl's RESOURCE[.GROUP][/SUBRESOURCE], e.g. pods, deployments.apps, pods/log
        res, _sep, group = resource.partition(".")
        group, _sep, sub_of_group = group.partition("/")
        res_name, _sep, sub = res.partition("/")
        sub = sub or sub_of_group
        res = f"{res_name}/{sub}" if sub else res_name
        if not DNS_LABEL_RE.match(res_name) or (sub and not DNS_LABEL_RE.match(sub)) or (
                group and not DNS_SUBDOMAIN_RE.match(group)):
            raise GrammarError(_("That is not a Kubernetes resource name (e.g. `pods`, `deployments.apps`, "
                                 "`pods/log`)."))
        args.update(verb=verb, resource=res, group=group)
        if "namespace" in opts:
            if not DNS_LABEL_RE.match(opts["namespace"]):
                raise GrammarError(_("That is not a valid namespace name."))
            args["namespace"] = opts["namespace"]
    elif name == "ingress":
        if len(rest) > 1:
            raise GrammarError(_("Usage: `{usage}`").format(usage=usage("ingress")))
        if rest:
            args["namespace"], args["ingress"] = _ns_name(rest[0], _(
                "The Ingress is NAMESPACE/NAME with Kubernetes names (lowercase letters, digits, '-', '.')."))
    elif rest:
        raise GrammarError(_("Too many words. Usage: `{usage}`").format(usage=usage(name)))
    shown = " ".join([name, str(spec)] + rest + ([f"--as {principal}"] if principal else [])
                     + ([f"-n {args['namespace']}"] if name == "rbac" and "namespace" in args else []))
    return Command(name, spec, principal, args, shown, lang)
