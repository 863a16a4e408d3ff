"""A fleet of clusters on the fake Google (tests and bench/sweep.py): copies of the recorded gke1 cluster in
copies of its project, each healthy (HTTP load balancing on) or broken (off: the `ingress/http-lb-addon` FAIL,
which `doctor` reports with a fix button)."""
from __future__ import annotations

import copy
import dataclasses

GKE1 = "gcpdiag-gke1-aaaa"
NUMBER = "12340002"


def _renamed(obj, pairs):
    if isinstance(obj, str):
        for a, b in pairs:
            obj = obj.replace(a, b)
        return obj
    if isinstance(obj, dict):
        return {_renamed(k, pairs): _renamed(v, pairs) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_renamed(v, pairs) for v in obj]
    return obj


def add_project(google, project: str, number: str):
    """A copy of the recorded gke1 project under another id and number, without clusters."""
    src = google.projects[GKE1]
    pairs = [(GKE1, project), (NUMBER, number)]
    st = copy.deepcopy(src)
    for f in dataclasses.fields(st):
        value = getattr(st, f.name)
        if isinstance(value, (dict, list)) and not f.name.startswith("_"):
            setattr(st, f.name, _renamed(value, pairs))
    st.number = number
    st.clusters = []
    google.projects[project] = st
    return st


def add_cluster(google, project: str, name: str, broken: bool = False, kube=None, template: dict | None = None) -> str:
    """A copy of gke1 (or `template`) named `name` in `project`; returns its path."""
    src = template or google.cluster(GKE1, "gke1")
    c = _renamed(copy.deepcopy(src), [(GKE1, project), ("/clusters/gke1", f"/clusters/{name}")])
    c["name"] = name
    c["addonsConfig"]["httpLoadBalancing"]["disabled"] = broken
    if kube is not None:
        c["endpoint"] = kube.endpoint
        c.setdefault("masterAuth", {})["clusterCaCertificate"] = kube.ca_b64
    google.projects[project].clusters.append(c)
    return f"projects/{project}/locations/{c['location']}/clusters/{name}"


def set_broken(google, project: str, name: str, broken: bool) -> None:
    google.cluster(project, name)["addonsConfig"]["httpLoadBalancing"]["disabled"] = broken


def make_fleet(google, projects: list[str], per_project: int, broken: set[tuple[str, str]] = frozenset(),
               kube=None) -> list[str]:
    """Projects (GKE1 first, if listed, keeps its own data) each with `per_project` clusters c0, c1, …"""
    paths, template = [], copy.deepcopy(google.cluster(GKE1, "gke1"))
    for i, project in enumerate(projects):
        if project == GKE1:
            google.projects[GKE1].clusters = [c for c in google.projects[GKE1].clusters if c["name"] == "__none__"]
        else:
            add_project(google, project, str(int(NUMBER) + 1000 + i))
        for j in range(per_project):
            name = f"c{j}"
            paths.append(add_cluster(google, project, name, (project, name) in broken, kube, template))
    return paths
