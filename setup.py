"""Optional compiled twins of the media hot path (issue 20).

``pip install .`` / ``pip install -e .`` compile the modules listed in
``server/accel_modules.txt`` with mypyc when a C compiler and mypy are present; each
is an *optional* extension, so a missing compiler only prints a warning and the
package installs pure Python. ``RELAYCAST_NO_EXTENSIONS=1`` skips the build (and, at
run time, the compiled modules; see ``server/accel.py``). The pure-Python modules are
the same source and stay the reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def _accelerated_paths() -> list[str]:
    listing = HERE / "server" / "accel_modules.txt"
    names = [line.strip() for line in listing.read_text().splitlines()]
    return [name.replace(".", "/") + ".py" for name in names if name and not name.startswith("#")]


def _extensions() -> list[Extension]:
    if os.environ.get("RELAYCAST_NO_EXTENSIONS", "") not in ("", "0"):
        (HERE / "server" / MANIFEST).unlink(missing_ok=True)  # leftovers stay unused
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("relaycast: mypy/mypyc not available, installing pure Python", file=sys.stderr)
        return []
    os.chdir(HERE)  # mypyc names modules by their path relative to the current directory
    # No config file: the project's mypy settings (plugins, file lists) are for linting;
    # compiling needs only these modules and what they import to type-check.
    try:
        extensions = mypycify(
            ["--config-file=", "--ignore-missing-imports", *_accelerated_paths()],
            opt_level="3",
            group_name="relaycast_accel",
        )
    except (Exception, SystemExit) as exc:  # mypyc exits on code it cannot compile
        # Still installable: the pure modules run, and CI's test_ci_runs_the_compiled_path
        # fails loudly instead (a listed module gained something mypyc refuses).
        print(f"relaycast: mypyc failed ({exc!r}), installing pure Python", file=sys.stderr)
        (HERE / "server" / MANIFEST).unlink(missing_ok=True)
        return []
    for extension in extensions:
        extension.optional = True  # no compiler: a warning, and the pure modules are used
    return list(extensions)


MANIFEST = "accel_build.json"


def _manifest() -> str:
    """The hash of every source compiled, so that server/accel.py can refuse an
    extension built from other source (an edited checkout not rebuilt yet)."""
    modules = {}
    for path in _accelerated_paths():
        name = path.removesuffix(".py").replace("/", ".")
        modules[name] = hashlib.sha256((HERE / path).read_bytes()).hexdigest()
    return json.dumps({"modules": modules}, indent=1, sort_keys=True) + "\n"


class BuildExt(build_ext):
    """Writes the manifest only when every extension was built: a failed or skipped
    build leaves none, so whatever extension files an older build left are not used."""

    def run(self) -> None:
        self._failed: list[str] = []
        manifest = (HERE if self.inplace else Path(self.build_lib)) / "server" / MANIFEST
        manifest.unlink(missing_ok=True)  # a wheel build leaves the in-place one alone
        super().run()
        if self.extensions and not self._failed:
            manifest.write_text(_manifest())

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception:
            self._failed.append(ext.name)
            raise


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
