"""Health: the instance answers and its database does too."""
from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from shared.adapters.postgres import repository as repo
from shared.domain.errors import Unavailable
from shared.web.models import Health

if TYPE_CHECKING:  # pg8000 loads with the first query, not with the module
    from shared.adapters.postgres.db import Database

log = logging.getLogger(__name__)

@functools.cache
def product_version() -> str:
    """The installed version, looked up once, on the first health check (a metadata scan: not at import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meet-middleware")
    except PackageNotFoundError:  # a deployed zip is not an installed distribution
        return "1.0.0"


def check(*, db: Database) -> Health:
    """ok when a trivial query succeeds, unavailable otherwise."""
    try:
        with db.read() as cur:
            repo.ping(cur)
    except Unavailable:
        log.warning("health: database unavailable")
        return Health(status="unavailable", database="unavailable", version=product_version())
    return Health(status="ok", database="ok", version=product_version())
