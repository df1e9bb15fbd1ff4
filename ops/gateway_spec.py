"""The API Gateway config (OpenAPI 2.0), generated from the route table, and the template Terraform renders."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shared.web.routes import ROUTES, Route

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "infra" / "terraform" / "generated" / "gateway-openapi.json.tftpl"

# API Gateway gives a backend 15 s by default; a create may wait ~10 s for the Meet conference plus Google retries.
BACKEND_DEADLINE_SECONDS = 60.0
# Unknown paths and methods go to one function so callers get the product's own problem+json 404/405, not the
# gateway's. `{path=**}` is API Gateway's multi-segment wildcard (OpenAPI 2.0 path templating); more specific
# templates win over it.
FALLBACK_PATH = "/{path=**}"
FALLBACK_FUNCTION = "get_meeting"
FALLBACK_METHODS = ("get", "head", "post", "put", "patch", "delete", "options")


def public_routes() -> list[Route]:
    """The routes API Gateway exposes: the table's public ones, in table order."""
    return [r for r in ROUTES if r.public]


def public_functions() -> list[str]:
    """The functions API Gateway must reach, in first-route order."""
    names = [r.function for r in public_routes()] + [FALLBACK_FUNCTION]
    return list(dict.fromkeys(names))


def _backend(url: str) -> dict[str, Any]:
    # The gateway signs each call with an ID token of its account for this audience; the function reads the
    # caller's X-Forwarded-Authorization only beside that token (shared/services/auth.py, authenticate_caller).
    return {"address": url, "jwt_audience": url, "path_translation": "APPEND_PATH_TO_ADDRESS",
            "deadline": BACKEND_DEADLINE_SECONDS}


def _path_params(names: list[str]) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "type": "string"} for n in names]


def _operation(route: Route, url: str) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary}
    if route.params:
        op["parameters"] = _path_params(route.params)
    op["x-google-backend"] = _backend(url)
    op["responses"] = {str(route.status): {"description": "Success"},
                       "default": {"description": "A problem (application/problem+json) from the backend"}}
    return op


def _fallback(method: str, url: str) -> dict[str, Any]:
    return {
        "operationId": f"fallback{method.capitalize()}",
        "summary": "Any other path or method: the product's own 404 or 405",
        "parameters": _path_params(["path"]),
        "x-google-backend": _backend(url),
        "responses": {"default": {"description": "A problem (application/problem+json) from the backend"}},
    }


def build_spec(function_urls: dict[str, str]) -> dict[str, Any]:
    """The Swagger 2.0 document for API Gateway, each public route sent to its function's URL."""
    missing = [f for f in public_functions() if f not in function_urls]
    if missing:
        raise KeyError(f"no URL for function(s): {', '.join(missing)}")
    paths: dict[str, dict[str, Any]] = {}
    for route in public_routes():
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, function_urls[route.function])
    paths[FALLBACK_PATH] = {m: _fallback(m, function_urls[FALLBACK_FUNCTION]) for m in FALLBACK_METHODS}
    return {
        "swagger": "2.0",
        "info": {"title": "Meet middleware API", "version": "1.0.0",
                 "description": "Google Meet video appointments for XOMA. Generated from shared/web/routes.py."},
        "schemes": ["https"],
        "produces": ["application/json"],
        "paths": paths,
    }


def render(spec: dict[str, Any]) -> str:
    """Stable JSON text of a spec (the committed template is compared byte for byte)."""
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def template_text() -> str:
    """The Terraform template: the spec with `${function_name}` where each function's URL goes."""
    names = public_functions()
    text = render(build_spec({name: "${%s}" % name for name in names}))
    # templatefile() would read any other `${` or `%{` as an expression or a directive.
    placeholders = sum(text.count("${%s}" % name) for name in names)
    if text.count("${") != placeholders or "%{" in text:
        raise ValueError("the generated spec contains template syntax other than the function placeholders")
    return text


def render_template(text: str, function_urls: dict[str, str]) -> str:
    """What Terraform's templatefile() makes of the template, for tests and manual deploys."""
    for name, url in function_urls.items():
        text = text.replace("${%s}" % name, url)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.gateway_spec", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"write the template to {TEMPLATE_PATH.relative_to(ROOT)}")
    mode.add_argument("--check", action="store_true", help="fail when the committed template is out of date")
    mode.add_argument("--url", action="append", default=[], metavar="FUNCTION=URL",
                      help="print the concrete spec for these function URLs (repeat per function)")
    args = parser.parse_args(argv)
    if args.url:
        urls = dict(item.split("=", 1) for item in args.url)
        sys.stdout.write(render(build_spec(urls)))
        return 0
    text = template_text()
    if args.check:
        current = TEMPLATE_PATH.read_text(encoding="utf-8") if TEMPLATE_PATH.exists() else ""
        if current != text:
            print(f"{TEMPLATE_PATH.relative_to(ROOT)} is out of date with shared/web/routes.py: "
                  "run `make gateway-spec`",
                  file=sys.stderr)
            return 1
        print("gateway spec template is up to date")
        return 0
    if args.write:
        TEMPLATE_PATH.parent.mkdir(parents=True, exist_ok=True)
        TEMPLATE_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {TEMPLATE_PATH.relative_to(ROOT)}")
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
