"""Loaded by every Python process the tests start (PYTHONPATH): refuse any non-loopback traffic.

Tests, fakes and the product under test may only open connections to 127.0.0.0/8 (or ::1);
anything else, including a DNS lookup of a public name, fails loudly and is written to stderr.
"""
from tests_loopback import install

install()
