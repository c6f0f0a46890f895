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

from setuptools import setup

HERE = Path(__file__).resolve().parent


def _accelerated_paths() -> list[str]:
    listing = HERE / "server" / "accel_modules.txt"
    names = [line.strip() for line in listing.read_text().splitlines()]
    return [name.replace(".", "/") + ".py" for name in names if name and not name.startswith("#")]


def _extensions() -> list[object]:
    if os.environ.get("RELAYCAST_NO_EXTENSIONS", "") not in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("relaycast: mypy/mypyc not available, installing pure Python", file=sys.stderr)
        return []
    os.chdir(HERE)  # mypyc names modules by their path relative to the current directory
    # No config file: the project's mypy settings (plugins, file lists) are for linting;
    # compiling needs only these modules and what they import to type-check.
    extensions = mypycify(
        ["--config-file=", "--ignore-missing-imports", *_accelerated_paths()],
        opt_level="3",
        group_name="relaycast_accel",
    )
    for extension in extensions:
        extension.optional = True  # no compiler: a warning, and the pure modules are used
    _write_manifest()
    return list(extensions)


def _write_manifest() -> None:
    """Record the hash of every source compiled, so that server/accel.py can refuse an
    extension built from older source (an edited checkout not rebuilt yet)."""
    modules = {}
    for path in _accelerated_paths():
        name = path.removesuffix(".py").replace("/", ".")
        modules[name] = hashlib.sha256((HERE / path).read_bytes()).hexdigest()
    manifest = HERE / "server" / "accel_build.json"
    manifest.write_text(json.dumps({"modules": modules}, indent=1, sort_keys=True) + "\n")


setup(ext_modules=_extensions())
