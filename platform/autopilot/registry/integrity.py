"""Artifact integrity: the canonical bytes the registry writes and the SHA-256 over them.

At registration every file of a model artifact (``model.pkl``, ``MLmodel``,
``schema.json``, ``reference_profile.json``, ``lineage.json`` ...) is hashed
into one SHA-256 by :func:`sha256_files`; loading recomputes it over the bytes
it is about to unpickle. :func:`json_bytes` is the one canonical JSON encoding
of the side files and the lineage tag, so equal content always hashes equal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["json_bytes", "read_tree", "sha256_files"]


def sha256_files(files: Mapping[str, bytes]) -> str:
    """One SHA-256 over a set of files, independent of the order they are given in.

    Each file contributes its relative path (``/``-separated), its length and
    its bytes, in path order, so renaming, adding or dropping a file changes the
    hash as surely as changing a byte.

    >>> sha256_files({"b": b"2", "a": b"1"}) == sha256_files({"a": b"1", "b": b"2"})
    True
    >>> sha256_files({"a": b"1"}) == sha256_files({"a": b"2"})
    False
    """
    h = hashlib.sha256()
    for path in sorted(files):
        data = files[path]
        h.update(path.encode())
        h.update(b"\0")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def json_bytes(obj: Any) -> bytes:
    """Canonical JSON (sorted keys; numpy values, sets, tuples and paths converted).

    >>> json_bytes({"b": (1, 2), "a": 1.5})
    b'{\\n "a": 1.5,\\n "b": [\\n  1,\\n  2\\n ]\\n}'
    """

    def _default(o: Any) -> Any:
        if hasattr(o, "tolist"):  # numpy scalars and arrays
            return o.tolist()
        if isinstance(o, (set, frozenset, tuple)):
            return list(o)
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"{type(o).__name__} is not JSON serialisable")

    return json.dumps(obj, sort_keys=True, indent=1, default=_default).encode()


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (or ``root`` itself if a file) by ``/``-separated relative path."""
    if root.is_file():
        return {root.name: root.read_bytes()}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
