"""Cloud Logging v2 `entries:list` for the Google fake, applying the filter as the real service does.

The request is `POST /v2/entries:list` with `{"resourceNames": ["projects/P"], "filter": "...",
"orderBy": "timestamp desc", "pageSize": N, "pageToken": T}`; the answer `{"entries": [...],
"nextPageToken": T}` with LogEntry JSON (resource.type/labels, labels, timestamp, severity,
textPayload or jsonPayload, logName, insertId, receiveTimestamp). The filter language subset it applies
(https://cloud.google.com/logging/docs/view/logging-query-language): comparisons `=`, `!=`, `:` (has),
`>`, `>=`, `<`, `<=` on field paths (`resource.type`, `resource.labels.cluster_name`,
`labels."k8s-pod/app"`, `jsonPayload.message`, `severity`, `timestamp`, `logName`), bare strings (global
search, case-insensitive, in every field), `AND`/`OR`/`NOT` with parentheses, and lines joined by an
implicit AND. Severity compares by rank, timestamps as instants. Anything else is refused with 400, as
the real service refuses a filter it cannot parse: a fake that ignored what it does not understand would
let a wrong filter pass.
"""
from __future__ import annotations

import json
import re
from datetime import datetime

SEVERITY = {"DEFAULT": 0, "DEBUG": 100, "INFO": 200, "NOTICE": 300, "WARNING": 400, "ERROR": 500, "CRITICAL": 600,
            "ALERT": 700, "EMERGENCY": 800}
TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>>=|<=|!=|=~|!~|[=:<>()])|(?P<word>[^\s"=:<>()!]+))')


class FilterError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"Unparseable filter: syntax error at column {pos + 1}")
        pos = m.end()
        kind = m.lastgroup
        out.append((kind, m[kind]))
        # a field path may continue with ."quoted key" (labels."k8s-pod/app")
    merged: list[tuple[str, str]] = []
    for kind, value in out:
        if merged and merged[-1][0] == "word" and merged[-1][1].endswith(".") and kind == "str":
            merged[-1] = ("word", merged[-1][1] + json.loads(value))
        else:
            merged.append((kind, value))
    return merged


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def parse(self):
        node = self.expr()
        if self.peek()[0] is not None:
            raise FilterError(f"Unparseable filter: unexpected {self.peek()[1]!r}")
        return node

    def expr(self):  # OR binds looser than AND (explicit or implicit)
        nodes = [self.conj()]
        while self.peek() == ("word", "OR"):
            self.take()
            nodes.append(self.conj())
        return ("or", nodes) if len(nodes) > 1 else nodes[0]

    def conj(self):
        nodes = [self.unary()]
        while True:
            kind, value = self.peek()
            if kind is None or (kind, value) in (("op", ")"), ("word", "OR")):
                break
            if (kind, value) == ("word", "AND"):
                self.take()
            nodes.append(self.unary())
        return ("and", nodes) if len(nodes) > 1 else nodes[0]

    def unary(self):
        kind, value = self.peek()
        if (kind, value) == ("word", "NOT") or (kind == "word" and value.startswith("-") and len(value) > 1
                                                 and self._is_field(value[1:])):
            self.take()
            if value == "NOT":
                return ("not", self.unary())
            self.toks.insert(self.i, ("word", value[1:]))
            return ("not", self.unary())
        if (kind, value) == ("op", "("):
            self.take()
            node = self.expr()
            if self.take() != ("op", ")"):
                raise FilterError("Unparseable filter: missing ')'")
            return node
        if kind == "str":
            self.take()
            return ("text", json.loads(value))
        if kind == "word":
            self.take()
            nxt = self.peek()
            if nxt[0] == "op" and nxt[1] in ("=", "!=", ":", ">", ">=", "<", "<="):
                self.take()
                vkind, raw = self.take()
                if vkind not in ("str", "word"):
                    raise FilterError(f"Unparseable filter: no value after {value} {nxt[1]}")
                return ("cmp", value, nxt[1], json.loads(raw) if vkind == "str" else raw)
            if nxt[0] == "op" and nxt[1] in ("=~", "!~"):
                raise FilterError("this fake does not evaluate regular expressions")
            return ("text", value)
        raise FilterError(f"Unparseable filter: unexpected {value!r}")

    @staticmethod
    def _is_field(word: str) -> bool:
        return bool(re.match(r"[A-Za-z_]", word))


def _lookup(entry: dict, path: str):
    node = entry
    parts = re.findall(r'[^.]+', path)
    if parts and parts[0] == "labels" and len(parts) > 2:  # labels.k8s-pod/app after merging the quoted key
        parts = ["labels", ".".join(parts[1:])]
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [str(node)] if node is not None else []


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"Invalid timestamp {text!r}") from None


def _compare(actual, op: str, wanted: str, field: str) -> bool:
    if actual is None:
        return op == "!="
    if field == "severity":
        if wanted.upper() not in SEVERITY:
            raise FilterError(f"Invalid severity {wanted!r}")
        a, w = SEVERITY.get(str(actual), 0), SEVERITY[wanted.upper()]
    elif field in ("timestamp", "receiveTimestamp"):
        a, w = _instant(str(actual)), _instant(wanted)
    else:
        a, w = str(actual), wanted
        if op == ":":
            return w.lower() in a.lower()
    return {"=": a == w, "!=": a != w, ":": a == w, ">": a > w, ">=": a >= w, "<": a < w, "<=": a <= w}[op]


def evaluate(node, entry: dict) -> bool:
    kind = node[0]
    if kind == "and":
        return all(evaluate(n, entry) for n in node[1])
    if kind == "or":
        return any(evaluate(n, entry) for n in node[1])
    if kind == "not":
        return not evaluate(node[1], entry)
    if kind == "text":
        return any(node[1].lower() in s.lower() for s in _strings(entry))
    _, field, op, wanted = node
    return _compare(_lookup(entry, field), op, wanted, field)


def list_entries(entries: list[dict], body: dict) -> dict:
    """The entries:list answer for stored `entries` (raises FilterError / ValueError for a bad request)."""
    names = body.get("resourceNames") or []
    if not names:
        raise ValueError("resourceNames: at least one resource name is required")
    projects = {n.removeprefix("projects/") for n in names if n.startswith("projects/")}
    tree = _Parser(body["filter"]).parse() if (body.get("filter") or "").strip() else ("and", [])
    order = (body.get("orderBy") or "timestamp asc").strip()
    if order not in ("timestamp asc", "timestamp desc"):
        raise ValueError(f"orderBy: only 'timestamp asc' and 'timestamp desc' are supported, not {order!r}")
    found = [e for e in entries if e.get("logName", "").split("/")[1] in projects and evaluate(tree, e)]
    found.sort(key=lambda e: _instant(e["timestamp"]), reverse=order.endswith("desc"))
    size = min(int(body.get("pageSize") or 50), 1000)
    start = int(body.get("pageToken") or 0)
    out: dict = {"entries": found[start:start + size]} if found[start:start + size] else {}
    if start + size < len(found):
        out["nextPageToken"] = str(start + size)
    return out


def container_entry(project: str, location: str, cluster: str, namespace: str, pod: str, container: str,
                    message: str, timestamp: str, severity: str = "ERROR", node: str = "gke-node-1") -> dict:
    """A k8s_container LogEntry as GKE's logging agent writes it (stderr, jsonPayload.message)."""
    return {"insertId": f"{abs(hash((pod, timestamp, message))) % 10**12:012d}", "jsonPayload": {"message": message},
            "resource": {"type": "k8s_container", "labels": {
                "project_id": project, "location": location, "cluster_name": cluster, "namespace_name": namespace,
                "pod_name": pod, "container_name": container}},
            "timestamp": timestamp, "severity": severity, "labels": {
                "k8s-pod/k8s-app": container, "compute.googleapis.com/resource_name": node},
            "logName": f"projects/{project}/logs/stderr", "receiveTimestamp": timestamp}
