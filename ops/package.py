"""Reproducible deployment zips, one per function, named by the hash of their bytes."""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
SHARED_DIR = ROOT / "shared"
REQUIREMENTS = ROOT / "requirements.txt"
DEFAULT_OUT = ROOT / "build"
MANIFEST = "manifest.json"

# The earliest time a zip entry can carry: every build stamps the same one, so the bytes depend on content only.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644  # regular file, rw-r--r--, whatever the checkout's umask was
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


def function_names(functions_dir: Path = FUNCTIONS_DIR) -> list[str]:
    """Every function in the repository: a directory under functions/ with a main.py."""
    return sorted(p.parent.name for p in functions_dir.glob("*/main.py"))


def _wanted(path: Path, base: Path) -> bool:
    rel = path.relative_to(base)
    if any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts):
        return False
    return path.is_file() and path.suffix not in _SKIP_SUFFIXES


def entries(name: str, *, functions_dir: Path = FUNCTIONS_DIR, shared_dir: Path = SHARED_DIR,
            requirements: Path = REQUIREMENTS) -> dict[str, bytes]:
    """Archive name -> content for one function: its own files at the root, then shared/ and requirements.txt."""
    source = functions_dir / name
    if not (source / "main.py").is_file():
        raise FileNotFoundError(f"no function {name!r}: {source / 'main.py'} is missing")
    files: dict[str, bytes] = {}
    for path in source.rglob("*"):
        if _wanted(path, source):
            files[path.relative_to(source).as_posix()] = path.read_bytes()
    for path in shared_dir.rglob("*"):
        if _wanted(path, shared_dir):
            files[f"shared/{path.relative_to(shared_dir).as_posix()}"] = path.read_bytes()
    # Cloud Functions installs requirements.txt from the source root; the function's own copy must not shadow it.
    files["requirements.txt"] = requirements.read_bytes()
    return files


def build_zip(files: dict[str, bytes]) -> bytes:
    """The zip bytes for these entries: sorted names, fixed time and mode, stored uncompressed."""
    # Stored, not deflated: deflate output may change with the zlib version, and different bytes on another
    # machine would mean a different name and a needless redeploy.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.create_system = 3  # unix, so external_attr carries the mode below
            info.external_attr = _FILE_MODE << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, files[name])
    return buffer.getvalue()


def package(names: list[str] | None = None, out_dir: Path = DEFAULT_OUT, **sources: Path) -> dict[str, dict[str, str]]:
    """Write `<name>-<sha256[:12]>.zip` per function and build/manifest.json; returns the manifest's functions."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = names or function_names(sources.get("functions_dir", FUNCTIONS_DIR))
    manifest: dict[str, dict[str, str]] = {}
    for name in names:
        data = build_zip(entries(name, **sources))
        digest = hashlib.sha256(data).hexdigest()
        zip_name = f"{name}-{digest[:12]}.zip"
        for stale in out_dir.glob(f"{name}-*.zip"):
            if stale.name != zip_name:
                stale.unlink()
        (out_dir / zip_name).write_bytes(data)
        manifest[name] = {"zip": zip_name, "sha256": digest}
    document = {"functions": dict(sorted(manifest.items()))}
    (out_dir / MANIFEST).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.package", description=__doc__)
    parser.add_argument("functions", nargs="*", help="functions to package (default: every one under functions/)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: build/)")
    args = parser.parse_args(argv)
    manifest = package(args.functions or None, args.out)
    for name, item in manifest.items():
        print(f"{name}: {args.out / item['zip']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
