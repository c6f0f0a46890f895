"""Interactive API docs (Swagger UI) served from a local Python package: no CDN."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

try:
    import swagger_ui

    ASSETS: Path | None = Path(swagger_ui.__file__).parent / "static"
except ImportError:  # pragma: no cover - swagger-ui-py is a hard dependency
    ASSETS = None

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>relaycast API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/v1/openapi.json",
      dom_id: "#ui",
      deepLinking: true,
      persistAuthorization: true,
      tryItOutEnabled: true,
    });
  </script>
</body>
</html>
"""


async def docs_page(_: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


def mount_docs(app: web.Application) -> None:
    app.router.add_get("/docs", docs_page)
    if ASSETS is not None and ASSETS.is_dir():
        app.router.add_static("/docs/assets", ASSETS)
