"""Catalog maintenance for both gettext domains (the engine's `checks`, the Slack edge's `bot`).

    python -m bot.i18n.catalogs update    # extract strings from the code into the ja .po files (keeps translations)
    python -m bot.i18n.catalogs compile   # write the .mo files next to the .po files
    python -m bot.i18n.catalogs check     # what tests/test_i18n.py checks: complete, placeholders equal, up to date
"""
from __future__ import annotations

import string
import sys
from pathlib import Path

from bot.i18n import BOT
from checks.i18n import CHECKS, LANGUAGES, Domain

HEADER = {"checks": "finding texts of the engine", "bot": "Slack and terminal texts"}
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2), "gettext": None}
ROOT = Path(__file__).resolve().parents[2]


def domains() -> list[tuple[Domain, Path]]:
    """Each catalog and the source folder its strings are extracted from."""
    return [(CHECKS, ROOT / "checks"), (BOT, ROOT / "bot")]


def extract(source: Path):
    """A Babel Catalog of every string wrapped in the source folder."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir
    catalog = Catalog(project="gke-bot", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
            str(source), method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=("i18n:",)):
        catalog.add(message, None, [(str(Path(source.name) / filename), lineno)], auto_comments=comments,
                    context=context)
    return catalog


def fields(text: str) -> list[str]:
    """The named placeholders of a str.format() message, sorted (repeats kept)."""
    out = []
    try:
        for _lit, name, _spec, _conv in string.Formatter().parse(text):
            if name is not None:
                out.append(name)
    except ValueError:
        return ["<malformed>"]
    return sorted(out)


def problems() -> list[str]:
    """Everything tests/test_i18n.py refuses: untranslated, fuzzy, placeholder mismatch, out of date."""
    from babel.messages.pofile import read_po
    out = []
    for domain, source in domains():
        wanted = extract(source)
        po = domain.po_path("ja")
        if not po.exists():
            return [f"{po} is missing: run `python -m bot.i18n.catalogs update`"]
        with open(po, "rb") as fh:
            have = read_po(fh, locale="ja")
        ids = {m.id if isinstance(m.id, str) else m.id[0] for m in wanted if m.id}
        got = {m.id if isinstance(m.id, str) else m.id[0]: m for m in have if m.id}
        for missing in sorted(ids - set(got)):
            out.append(f"{domain.name}: not in {po.name} (run `python -m bot.i18n.catalogs update`): {missing!r}")
        for stale in sorted(set(got) - ids):
            out.append(f"{domain.name}: in {po.name} but no longer in the code: {stale!r}")
        for mid, m in got.items():
            if mid not in ids:
                continue
            texts = list(m.id) if isinstance(m.id, (tuple, list)) else [m.id]
            strs = [s for s in (m.string if isinstance(m.string, (tuple, list)) else [m.string])]
            if not all(strs) or m.fuzzy:
                out.append(f"{domain.name}: no Japanese translation{' (fuzzy)' if m.fuzzy else ''}: {mid!r}")
                continue
            for s in strs:
                if fields(s) != fields(texts[0]):
                    out.append(f"{domain.name}: placeholders differ: {mid!r} {fields(texts[0])} vs {s!r} {fields(s)}")
    return out


def update() -> None:
    """Extract the strings and merge them into each domain's ja .po (translations kept, obsolete dropped)."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po, write_po
    for domain, source in domains():
        template = extract(source)
        po = domain.po_path("ja")
        po.parent.mkdir(parents=True, exist_ok=True)
        if po.exists():
            with open(po, "rb") as fh:
                catalog = read_po(fh, locale="ja", domain=domain.name)
        else:
            catalog = Catalog(locale="ja", domain=domain.name, project="gke-bot", charset="utf-8")
        template.creation_date = catalog.creation_date  # no churn in the header on every update
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        catalog.fuzzy = False
        catalog.project, catalog.version = "gke-bot", ""
        catalog.msgid_bugs_address, catalog.last_translator = "", "gke-bot developers"
        catalog.language_team = "Japanese"
        catalog.header_comment = (f"# Japanese messages of gke-bot ({domain.name}: {HEADER[domain.name]}).\n"
                                  "# Style: the seeds' terms and tone, polite and short; identifiers verbatim.\n"
                                  "# Maintained with `python -m bot.i18n.catalogs update` (see checks/i18n.py).")
        with open(po, "wb") as fh:
            write_po(fh, catalog, width=100, no_location=True, sort_by_file=False, include_previous=False)


def compile_all(dest_root: Path | None = None) -> list[Path]:
    """Write each .mo next to its .po (or under dest_root, keeping the path relative to the project)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    written = []
    for domain, _source in domains():
        for lang in LANGUAGES:
            po = domain.po_path(lang)
            if not po.exists():
                continue
            mo = po.with_suffix(".mo")
            if dest_root is not None:
                mo = Path(dest_root) / po.relative_to(ROOT).with_suffix(".mo")
                mo.parent.mkdir(parents=True, exist_ok=True)
            with open(po, "rb") as fh:
                catalog = read_po(fh, locale=lang, domain=domain.name)
            with open(mo, "wb") as fh:
                write_mo(fh, catalog)
            written.append(mo)
    return written


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else ""
    if cmd == "update":
        update()
        return 0
    if cmd == "compile":
        for path in compile_all():
            print(path)
        return 0
    if cmd == "check":
        found = problems()
        print("\n".join(found) or "catalogs complete")
        return 1 if found else 0
    print("usage: python -m bot.i18n.catalogs update|compile|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
