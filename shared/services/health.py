"""Health: the instance answers and its database does too."""
from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from shared.adapters.postgres import repository as repo
from shared.domain.errors import Unavailable
from shared.web.models import Health

if TYPE_CHECKING:  # pg8000 loads with the first query, not with the module
    from shared.adapters.postgres.db import Database

log = logging.getLogger(__name__)

try:
    VERSION = version("meet-middleware")
except PackageNotFoundError:  # a deployed zip is not an installed distribution
    VERSION = "1.0.0"


def check(*, db: Database) -> Health:
    """ok when a trivial query succeeds, unavailable otherwise."""
    try:
        with db.transaction() as cur:
            repo.ping(cur)
    except Unavailable:
        log.warning("health: database unavailable")
        return Health(status="unavailable", database="unavailable", version=VERSION)
    return Health(status="ok", database="ok", version=VERSION)
