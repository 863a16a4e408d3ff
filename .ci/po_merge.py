#!/usr/bin/env python3
"""A git merge driver for gettext catalogs: the union of both sides' messages.

Branches that add strings each add entries to the same .po file; a line-based merge conflicts where
two entries land side by side. This driver merges by message id instead: every message of either side,
a translation where either side has one (ours first). Entries no longer in the code are dropped by
`python -m bot.i18n.catalogs update`, and tests/test_i18n.py says what is left to translate.

    git config merge.po-union.driver "python3 .ci/po_merge.py %O %A %B"
    (.gitattributes: *.po merge=po-union)
"""
import sys

from babel.messages.pofile import read_po, write_po


def main(base: str, ours: str, theirs: str) -> int:
    with open(ours, "rb") as fh:
        a = read_po(fh, locale="ja")
    with open(theirs, "rb") as fh:
        b = read_po(fh, locale="ja")
    for m in b:
        if not m.id:
            continue
        mine = a.get(m.id, context=m.context)
        if mine is None:
            a[m.id] = m
        elif not mine.string and m.string:
            mine.string, mine.flags = m.string, set(m.flags)
    with open(ours, "wb") as fh:
        write_po(fh, a, width=100, no_location=True, include_previous=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
