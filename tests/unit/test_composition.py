"""The control API is composed in one place: routes/__init__ and appkeys."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import control_api

# A fresh interpreter: in this one, other tests may already have imported a route
# module that the package itself forgot to list.
SERVED_MODULES = """
import pkgutil

from aiohttp import web

import control_api.routes as routes

app = web.Application()
routes.mount(app)
served = set()
for route in app.router.routes():
    op = getattr(route.handler, "operation", None)
    served.add((op.handler if op is not None else route.handler).__module__)
for module in pkgutil.iter_modules(routes.__path__):
    name = f"{routes.__name__}.{module.name}"
    print(name, name in served)
"""


def test_every_route_module_is_mounted_by_the_routes_package() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SERVED_MODULES], capture_output=True, text=True, check=True
    ).stdout
    served = dict(line.split() for line in out.splitlines())
    assert "control_api.routes.destinations" in served
    assert [name for name, ok in served.items() if ok != "True"] == []


def _defines_app_key(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "AppKey"
    )


def test_app_keys_are_defined_only_in_appkeys() -> None:
    package = Path(control_api.__file__).parent
    elsewhere = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if path.name != "appkeys.py" or path.parent != package
        if any(_defines_app_key(n) for n in ast.walk(ast.parse(path.read_text())))
    ]
    assert elsewhere == []
