import pytest

from checks import versions
from checks.versions import Version


def test_parse_gke_versions():
    v = Version.parse("1.21.0-gke.1000")
    assert (v.major, v.minor, v.patch, v.gke) == (1, 21, 0, 1000)
    assert str(v) == "1.21.0-gke.1000"
    assert Version.parse("v1.25") == Version(1, 25, 0, 0)
    for bad in ("-", "latest", "", "1", "1.x.0", "1.25.7-gke.1000junk"):
        with pytest.raises(ValueError):
            Version.parse(bad)


def test_ordering_is_numeric_not_lexical():
    ordered = ["1.9.7-gke.1", "1.21.0-gke.1000", "1.21.0-gke.1200", "1.21.1-gke.100", "1.25.7-gke.1000",
               "1.29.4-gke.1043002"]
    assert sorted(ordered, key=Version.parse) == ordered
    assert sorted(reversed(ordered), key=Version.parse) == ordered
    assert versions.compare("1.21.0-gke.1000", "1.21.0-gke.999") == 1
    assert versions.compare("1.21.0-gke.1000", "1.21.0-gke.1000") == 0
    assert versions.compare("1.9.0", "1.21.0") == -1


@pytest.mark.parametrize("master,node,skew,supported", [
    ("1.25.7-gke.1000", "1.25.6-gke.100", 0, True),
    ("1.25.7-gke.1000", "1.23.17-gke.100", 2, True),
    ("1.25.7-gke.1000", "1.22.10-gke.600", 3, False),   # below 1.28: at most 2 minors
    ("1.28.3-gke.1200", "1.25.16-gke.100", 3, True),    # from 1.28: 3 minors
    ("1.28.3-gke.1200", "1.24.17-gke.100", 4, False),
    ("1.27.3-gke.100", "1.24.17-gke.100", 3, False),
    ("1.25.7-gke.1000", "1.26.1-gke.100", -1, False),   # nodes newer than the control plane
    ("2.0.0", "1.30.0", 1000, False),
])
def test_minor_skew_policy(master, node, skew, supported):
    assert versions.minor_skew(master, node) == skew
    from checks.rules.node_pool_versions import _unsupported
    assert (_unsupported(master, node) == "") is supported  # the rule the why-400 check applies


def test_max_node_skew_changes_at_1_28():
    assert versions.max_node_skew("1.27.16-gke.1") == 2
    assert versions.max_node_skew("1.28.0-gke.1") == 3
    assert versions.max_node_skew("1.30.1-gke.1") == 3
