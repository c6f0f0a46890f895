"""Which implementation of each hot module runs: compiled (mypyc) or pure Python.

The modules listed in ``accel_modules.txt`` are compiled from their own source when
the package is built with a C compiler (``setup.py``); the extension module then sits
next to the ``.py`` file and the import system prefers it. The pure source stays the
reference and the fallback, so this module only has to decide, not to wire anything:

* ``RELAYCAST_NO_EXTENSIONS=1`` puts a finder first on ``sys.meta_path`` that imports
  those modules from their ``.py`` source (:func:`install`, run by ``server/__init__``
  before any of them can be imported);
* so does a build that no longer matches its source: ``setup.py`` records the hash of
  every module it compiled (``accel_build.json``), and an edited checkout that was not
  rebuilt runs pure Python, with the reason in the start-up log, rather than the
  compiled old code. All or nothing: compiled modules call each other natively.
* :func:`implementations` reports what was actually imported (start-up log, /healthz);
* :func:`load_pure` gives the tests fresh pure copies beside the compiled ones, so the
  same test and the differential fuzzer run against both in one process.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

ENV_NO_EXTENSIONS = "RELAYCAST_NO_EXTENSIONS"
COMPILED = "compiled"
PURE = "pure"


def _listed() -> tuple[str, ...]:
    text = (Path(__file__).with_name("accel_modules.txt")).read_text()
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


ACCELERATED: tuple[str, ...] = _listed()
"""Module names that may have a compiled twin (the same list setup.py compiles)."""


def extensions_disabled(environ: Mapping[str, str] = os.environ) -> bool:
    """True when the environment forces the pure-Python path."""
    return environ.get(ENV_NO_EXTENSIONS, "") not in ("", "0")


class _SourceOnly(importlib.abc.MetaPathFinder):
    """Imports the accelerated modules from their ``.py`` files, never the extension."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname not in ACCELERATED or path is None:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for entry in path:
            candidate = os.path.join(entry, leaf)
            if os.path.isfile(candidate):
                return importlib.util.spec_from_file_location(fullname, candidate)
        return None


def _stale(root: Path) -> list[str]:
    """Accelerated modules whose source differs from what the build compiled (all of
    them when there is no build manifest)."""
    try:
        built = json.loads((root / "accel_build.json").read_text())["modules"]
    except (OSError, ValueError, KeyError, TypeError):
        return list(ACCELERATED)
    stale = []
    for name in ACCELERATED:
        source = root.parent.joinpath(*name.split(".")).with_suffix(".py")
        try:
            digest = hashlib.sha256(source.read_bytes()).hexdigest()
        except OSError:
            digest = ""
        if built.get(name) != digest:
            stale.append(name)
    return stale


def _pure_reason(environ: Mapping[str, str], root: Path) -> str | None:
    """Why the compiled modules must not be used, or None when they may be."""
    if extensions_disabled(environ):
        return f"{ENV_NO_EXTENSIONS}=1"
    stale = _stale(root)
    if len(stale) == len(ACCELERATED):
        return "no compiled build matches the source (pip install -e . with a C compiler)"
    if stale:
        return f"source changed since the build: {', '.join(stale)} (rebuild: pip install -e .)"
    return None


pure_reason: str | None = None
"""Why the pure path was forced at start-up (for the log), or None."""


def install(environ: Mapping[str, str] = os.environ) -> None:
    """Force the pure path when the environment asks for it or the build does not match
    the source (idempotent)."""
    global pure_reason
    pure_reason = _pure_reason(environ, Path(__file__).parent)
    forced = any(isinstance(f, _SourceOnly) for f in sys.meta_path)
    if pure_reason is not None and not forced:
        sys.meta_path.insert(0, _SourceOnly())


def is_compiled(module: ModuleType) -> bool:
    """Whether ``module`` was loaded from an extension module."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return (getattr(module, "__file__", None) or "").endswith(suffixes)


def implementations() -> dict[str, str]:
    """``compiled`` or ``pure`` for every accelerated module (importing it if needed)."""
    return {
        name: COMPILED if is_compiled(importlib.import_module(name)) else PURE
        for name in ACCELERATED
    }


def summary() -> str:
    """One word for logs and /healthz: ``compiled``, ``pure`` or ``mixed``."""
    kinds = set(implementations().values())
    return kinds.pop() if len(kinds) == 1 else "mixed"


def describe() -> str:
    """The start-up log's account: the path, each module's, and why pure if forced."""
    modules = ", ".join(f"{name} {kind}" for name, kind in implementations().items())
    why = f"; pure because {pure_reason}" if pure_reason else ""
    return f"{summary()} ({modules}){why}"


def load_pure() -> dict[str, ModuleType]:
    """Fresh pure-Python copies of every accelerated module, by name.

    They are imported together under their real names (so a pure module's relative
    imports reach the pure copies of its accelerated siblings), then the previous
    modules are put back into ``sys.modules`` and onto their parent packages: the rest
    of the process keeps whatever it had imported. The process's own modules are all
    imported first, so that the modules outside the list which they import (packages
    re-exporting them, ``server.ingest.sessions`` building meters) are bound to them:
    imported for the first time by a pure twin, they would keep its classes for good,
    and compiled code refuses the pure twin's objects.
    """
    for name in ACCELERATED:
        importlib.import_module(name)
    saved = {name: sys.modules.pop(name) for name in ACCELERATED}
    finder = _SourceOnly()
    sys.meta_path.insert(0, finder)
    try:
        return {name: importlib.import_module(name) for name in ACCELERATED}
    finally:
        sys.meta_path.remove(finder)
        for name in ACCELERATED:
            sys.modules.pop(name, None)
            parent, _, leaf = name.rpartition(".")
            package = sys.modules.get(parent)
            if name in saved:
                sys.modules[name] = saved[name]
                if package is not None:
                    setattr(package, leaf, saved[name])
            elif package is not None and hasattr(package, leaf):
                delattr(package, leaf)
