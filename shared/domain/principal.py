"""Who is calling: an API client behind a key, or the platform's own task invoker."""
from __future__ import annotations

from dataclasses import dataclass

ROLES = ("service", "admin")


@dataclass(frozen=True)
class Principal:
    client_id: str
    name: str
    role: str  # service | admin | invoker

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


INVOKER = Principal(client_id="internal", name="task-invoker", role="invoker")
