"""`/v1/docs`: Swagger UI from the packaged swagger-ui-dist files, with nothing fetched from another host.

The files come from the flask-openapi-swagger wheel (byte-identical to swagger-ui-dist of the same version, see
docs/decisions/0004). It is located, never imported, and only when a docs route is asked for: a cold start of
get_meeting reads none of it.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from shared.domain.errors import NotFound

_PACKAGE = "flask_openapi_swagger"
# Served name -> (content type, path inside the package's swagger folder); anything else is a 404.
_PACKAGED = {
    "swagger-ui.css": ("text/css", "css/swagger-ui.css"),
    "swagger-ui-bundle.js": ("text/javascript", "js/swagger-ui-bundle.js"),
}
_INIT = "docs.js"
ASSETS = frozenset({*_PACKAGED, _INIT})

# The page may load its own scripts, styles and data only: a stray URL to a CDN or a validator fails in the browser.
# Swagger UI sets inline style attributes and shows images as data: URLs.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
ASSET_HEADERS = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Meet middleware API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/v1/docs/swagger-ui.css">
</head>
<body>
<noscript>This page needs JavaScript. The raw document is <a href="/v1/openapi.json">openapi.json</a>.</noscript>
<div id="swagger-ui"></div>
<script src="/v1/docs/swagger-ui-bundle.js"></script>
<script src="/v1/docs/docs.js"></script>
</body>
</html>
"""

# Calls made with "Try it out" go to the origin the page was loaded from, whatever `servers` the document names.
_INIT_JS = """"use strict";
fetch("/v1/openapi.json", {headers: {Accept: "application/json"}})
  .then(function (response) { return response.json(); })
  .then(function (spec) {
    spec.servers = [{url: window.location.origin, description: "This server"}];
    window.ui = SwaggerUIBundle({
      spec: spec,
      dom_id: "#swagger-ui",
      deepLinking: true,
      docExpansion: "list",
      defaultModelsExpandDepth: 0,
      defaultModelExpandDepth: 2,
      displayRequestDuration: true,
      persistAuthorization: true,
      tryItOutEnabled: false,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis]
    });
  })
  .catch(function (error) {
    document.getElementById("swagger-ui").textContent = "Could not load /v1/openapi.json: " + error;
  });
"""


def _package_dir() -> Path:
    spec = importlib.util.find_spec(_PACKAGE)  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{_PACKAGE} is not installed (requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "templates" / "swagger"


def asset(name: str) -> tuple[str, str]:
    """(content type, text) of one file the page loads; NotFound for any other name."""
    if name not in ASSETS:
        raise NotFound("The documentation page has no such file.")
    return _read(name)


@functools.cache
def _read(name: str) -> tuple[str, str]:
    if name == _INIT:
        return "text/javascript", _INIT_JS
    content_type, relative = _PACKAGED[name]
    return content_type, (_package_dir() / relative).read_text(encoding="utf-8")  # once per instance
