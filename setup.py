"""Build hook: compile the gettext catalogs (.po → .mo) into the built package.

Everything else is in pyproject.toml. A source checkout (editable install) compiles the catalogs in
memory on first use instead (checks.i18n), so nothing generated is committed.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalogs(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po
        for po in (p for pkg in ("bot", "checks") for p in Path(pkg).glob("**/locale/*/LC_MESSAGES/*.po")):
            mo = Path(self.build_lib) / po.with_suffix(".mo")
            mo.parent.mkdir(parents=True, exist_ok=True)
            with open(po, "rb") as fh:
                catalog = read_po(fh, locale=po.parts[-3], domain=po.stem)
            with open(mo, "wb") as fh:
                write_mo(fh, catalog)


setup(cmdclass={"build_py": BuildWithCatalogs})
