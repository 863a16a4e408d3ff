"""GKE version strings (`1.25.7-gke.1000`): parsing, ordering, and the node version-skew policy.

Kubernetes supports nodes (kubelets) up to two minor versions older than the control plane when the
control plane is older than 1.28, and up to three minor versions older from 1.28 on; never newer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-gke\.(\d+))?$")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int = 0
    gke: int = 0  # the -gke.N build; 0 when absent
    text: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> "Version":
        """`1.21.0-gke.1000`, `1.21.0`, `1.21`, `v1.21.0`; raises ValueError for anything else (`-`, `latest`)."""
        m = _VERSION_RE.match((text or "").strip())
        if not m:
            raise ValueError(f"not a GKE version: {text!r}")
        return cls(*(int(g or 0) for g in m.groups()), text=text.strip())

    @property
    def minor_version(self) -> tuple[int, int]:
        return self.major, self.minor

    def __str__(self) -> str:
        return self.text or f"{self.major}.{self.minor}.{self.patch}" + (f"-gke.{self.gke}" if self.gke else "")


def parse(text: str) -> Version:
    return Version.parse(text)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as version a is older than, equal to or newer than b."""
    va, vb = parse(a), parse(b)
    return (va > vb) - (va < vb)


def minor_skew(control_plane: str, node: str) -> int:
    """How many minor versions the node is behind the control plane (negative: ahead)."""
    cp, nd = parse(control_plane), parse(node)
    if cp.major != nd.major:
        return (cp.major - nd.major) * 1000  # a major version apart: far beyond any supported skew
    return cp.minor - nd.minor


def max_node_skew(control_plane: str) -> int:
    """The most minor versions a node may lag this control plane: 2 below 1.28, 3 from 1.28."""
    return 3 if parse(control_plane).minor_version >= (1, 28) else 2

