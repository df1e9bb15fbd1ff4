"""Email addresses as the product compares them: one mailbox, however its domain is spelled."""
from __future__ import annotations

import functools


@functools.lru_cache(maxsize=4096)
def mailbox(email: str | None) -> str:
    """A comparison key: the local part and the domain lower-cased, the domain in its IDNA (xn--) form, so that
    `p@clínica.com` and `p@xn--clnica-4va.com` are the same mailbox. The spelling first given is what is kept."""
    if not email:
        return ""
    local, _, domain = email.rpartition("@")
    return f"{local.lower()}@{domain_key(domain)}"


@functools.lru_cache(maxsize=1024)
def domain_key(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return domain.lower()
