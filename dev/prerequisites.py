"""What `make run` needs from the machine, checked before anything starts: each missing piece is one line.

Light on purpose (no gRPC, no Google client libraries): the stack runs these checks first, so a missing Java or a
taken port is reported within a second instead of after the database and the fake Google have started.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Mapping
from pathlib import Path

from dev.ports import port_taken

# The Firestore emulator's jar, below the Cloud SDK's root (`gcloud` is <root>/bin/gcloud).
FIRESTORE_JAR = Path("platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")
# When the jar cannot be read: the oldest Java the emulator has been built for.
FALLBACK_JAVA = 11
_VERSION = re.compile(r'version "(?:1\.(\d+)|(\d+))')


class Missing(Exception):
    """A prerequisite is missing: the message says which, and what to do, in one line."""


def gcloud(environ: Mapping[str, str]) -> Path:
    """The Cloud SDK's `gcloud`, which runs the Firestore emulator."""
    found = shutil.which("gcloud", path=environ.get("PATH", os.defpath))
    if found is None:
        raise Missing("the Firestore emulator needs the Google Cloud SDK with its cloud-firestore-emulator component "
                      "(gcloud not found on PATH)")
    return Path(found)


def java(environ: Mapping[str, str], gcloud_path: Path | None = None) -> dict[str, str]:
    """Check that a Java the Firestore emulator can run on is there: JAVA (which the emulator's launcher honours),
    else `java` on PATH, else JAVA_HOME's. Returns what to add to the emulator's environment so it runs that one."""
    chosen, extra = environ.get("JAVA"), {}
    if not chosen:
        chosen = shutil.which("java", path=environ.get("PATH", os.defpath))
    if not chosen and environ.get("JAVA_HOME"):
        home_java = Path(environ["JAVA_HOME"]) / "bin" / "java"
        if os.access(home_java, os.X_OK):
            chosen, extra = str(home_java), {"JAVA": str(home_java)}
    needed = required_java(gcloud_path)
    if not chosen:
        where = "on PATH or in JAVA_HOME" if not environ.get("JAVA_HOME") else "on PATH, nor in JAVA_HOME/bin"
        raise Missing(f"the Firestore emulator needs Java {needed}+ (java not found {where})")
    found = java_version(chosen)
    if found is None:
        raise Missing(f"the Firestore emulator needs Java {needed}+ ({chosen} -version did not say its version)")
    if found < needed:
        raise Missing(f"the Firestore emulator needs Java {needed}+ (found Java {found}; put a newer java on PATH "
                      "or set JAVA_HOME)")
    return extra


def java_version(java_path: str) -> int | None:
    """The major version `java -version` reports (8 for 1.8.x), or None when it does not run or say."""
    try:
        done = subprocess.run([java_path, "-version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(done.stderr + done.stdout)
    if match is None:
        return None
    return int(match.group(1) or match.group(2))


def required_java(gcloud_path: Path | None) -> int:
    """The Java the installed Firestore emulator was compiled for (a class file's version), when it can be read."""
    if gcloud_path is None:
        return FALLBACK_JAVA
    jar = gcloud_path.resolve().parent.parent / FIRESTORE_JAR
    try:
        with zipfile.ZipFile(jar) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".class") and "module-info" not in n)
            header = archive.read(name)[:8]
    except (OSError, zipfile.BadZipFile, StopIteration, KeyError):
        return FALLBACK_JAVA
    if header[:4] != b"\xca\xfe\xba\xbe":
        return FALLBACK_JAVA
    return max(FALLBACK_JAVA, int.from_bytes(header[6:8], "big") - 44)  # class file 55 is Java 11


def port_number(environ: Mapping[str, str], name: str, default: int | None) -> int | None:
    value = environ.get(name) or (str(default) if default is not None else None)
    if value is None:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise Missing(f"{name} must be a port number from 1 to 65535, not {value!r}")
    return int(value)


def free(port: int, setting: str) -> None:
    if port_taken(port):
        raise Missing(f"port {port} is in use (set {setting} to another port)")


def check(environ: Mapping[str, str]) -> dict[str, str]:
    """Every prerequisite of `make run`, cheapest first; returns what the Firestore emulator's environment needs."""
    gateway = port_number(environ, "GATEWAY_PORT", 8080)
    assert gateway is not None
    free(gateway, "GATEWAY_PORT")
    if not environ.get("GOOGLE_API_ROOT"):
        fake_google = port_number(environ, "FAKE_GOOGLE_PORT", None)
        if fake_google is not None:
            if fake_google == gateway:
                raise Missing(f"FAKE_GOOGLE_PORT and GATEWAY_PORT are both {gateway}: give them different ports")
            free(fake_google, "FAKE_GOOGLE_PORT")
    return java(environ, gcloud(environ))
