"""Name rules for what users type, checked before any API call."""
from __future__ import annotations

import re

from checks.i18n import _

CLUSTER_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?$")  # GKE: <= 40 chars
PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")  # 6-30 chars
LOCATION_RE = re.compile(r"^[a-z]+-[a-z]+[0-9]{1,2}(?:-[a-z])?$")  # region or zone
DNS_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")  # namespaces, RFC 1123 label
DNS_SUBDOMAIN_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
PRINCIPAL_KINDS = ("user", "serviceAccount", "group")


def is_zone(location: str) -> bool:
    return bool(re.match(r"^[a-z]+-[a-z]+[0-9]{1,2}-[a-z]$", location))


def cluster_problem(name: str) -> str:
    """'' when valid, else why not."""
    if CLUSTER_RE.match(name):
        return ""
    if len(name) > 40:
        return _("a GKE cluster name has at most 40 characters")
    if not name[:1].isalpha() or not name[:1].islower():
        return _("a GKE cluster name starts with a lowercase letter")
    return _("a GKE cluster name has only lowercase letters, digits and hyphens, and does not end with a hyphen")


def normalize_principal(text: str) -> str:
    """`user:x`, `serviceAccount:x`, `group:x` or a bare email (→ user: or serviceAccount:). Raises ValueError."""
    kind, _sep, email = text.partition(":")
    if not email:
        kind, email = ("serviceAccount" if text.endswith(".gserviceaccount.com") else "user"), text
    if kind not in PRINCIPAL_KINDS:
        raise ValueError(_("a principal is user:EMAIL, serviceAccount:EMAIL, group:EMAIL or an email, not `{kind}:`")
                         .format(kind=kind))
    if not EMAIL_RE.match(email):
        raise ValueError(_("that principal is not an email address"))
    return f"{kind}:{email}"
