"""Run a test module against both implementations of the accelerated modules.

A test module opts in with ``pytestmark = pytest.mark.usefixtures("implementation")``:
every test then runs twice, once as imported (compiled when the package was built with
a compiler) and once with the pure-Python twins from :func:`server.accel.load_pure`
swapped into the module's globals and its sibling helper modules' globals, as aiohttp
runs its parser tests against both parsers. The test code stays unchanged.
"""

from __future__ import annotations

import functools
import os
import sys
from types import ModuleType

import pytest

from server import accel


@functools.cache
def pure_twins() -> dict[str, ModuleType]:
    return accel.load_pure()


def _swaps() -> dict[int, object]:
    """id(compiled object) -> its pure twin, for every module-level name."""
    swaps: dict[int, object] = {}
    for name, pure in pure_twins().items():
        compiled = sys.modules.get(name)
        if compiled is None or compiled is pure:
            continue
        swaps[id(compiled)] = pure
        for attr, value in vars(compiled).items():
            twin = vars(pure).get(attr)
            if twin is not None and twin is not value and not attr.startswith("__"):
                swaps[id(value)] = twin
    return swaps


def use_pure(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> None:
    """Point ``module`` and the helper modules of its package at the pure twins."""
    swaps = _swaps()
    package = module.__name__.rpartition(".")[0] + "."
    targets = [m for n, m in list(sys.modules.items()) if n.startswith(package) and m is not None]
    swapped = 0
    for target in {id(m): m for m in [module, *targets]}.values():
        for attr, value in list(vars(target).items()):
            twin = swaps.get(id(value))
            if twin is not None:
                monkeypatch.setattr(target, attr, twin)
                swapped += target is module
    if not swapped:  # opted in, but the second run would test the compiled code again
        raise AssertionError(f"{module.__name__} uses no accelerated module's names")


def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The body of the ``implementation`` fixture (tests/conftest.py)."""
    kind = str(request.param)
    if kind == accel.PURE:
        if accel.summary() == accel.PURE:
            message = "no compiled build: the default run already is the pure one"
            if os.environ.get("CI") and not accel.extensions_disabled():
                pytest.fail(message + " (CI builds the extensions: pip install -e .)")
            pytest.skip(message)
        use_pure(monkeypatch, request.module)
    return kind
