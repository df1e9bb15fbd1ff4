"""The bench times functions with their bytecode compiled, as a deployed instance has it.

Cloud Functions' Python build runs `python3 -m compileall -f -q .` over each function's source before it serves
(GoogleCloudPlatform/buildpacks, cmd/python/functions_framework/lib/lib.go), so no deployed cold start compiles the
product's modules. The bench must start from the same place on any checkout, including one that writes no bytecode
itself (PYTHONDONTWRITEBYTECODE): each source file then has a bytecode file the interpreter accepts as current.
"""
from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

from dev import bench

ROOT = Path(__file__).resolve().parents[2]


def _current(source: Path) -> bool:
    """Whether the interpreter would load `source`'s cached bytecode instead of compiling it (PEP 552 header:
    timestamp-based, or hash-based as compileall writes it when SOURCE_DATE_EPOCH is set)."""
    cached = Path(importlib.util.cache_from_source(str(source)))
    if not cached.is_file():
        return False
    header = cached.read_bytes()[:16]
    (flags,) = struct.unpack("<I", header[4:8])
    if header[:4] != importlib.util.MAGIC_NUMBER:
        return False
    if flags & 1:  # hash-based
        return header[8:16] == importlib.util.source_hash(source.read_bytes())
    mtime, size = struct.unpack("<2I", header[8:16])
    stat = source.stat()
    return mtime == int(stat.st_mtime) & 0xFFFFFFFF and size == stat.st_size & 0xFFFFFFFF


def test_every_module_of_the_product_and_the_baselines_is_compiled_first(tmp_path):
    for name, source in (("hello", bench.HELLO_SOURCE), ("limit", bench.LIMIT_SOURCE)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "main.py").write_text(source)
    sources = [*(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py"),
               tmp_path / "hello" / "main.py", tmp_path / "limit" / "main.py"]

    assert bench.compile_as_deployed(tmp_path) == len(sources)
    stale = [str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p.name) for p in sources if not _current(p)]
    assert not stale, f"no current bytecode for {stale}"
