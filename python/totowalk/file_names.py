"""A name (a symbol, a model label) as part of a file name, one file a name."""

from __future__ import annotations

import hashlib


def file_safe(name, empty: str = "series") -> str:
    """``name`` itself when every character is safe in a file name, else those replaced by ``_``
    and a digest of the name added (BRK/B -> BRK_B-1a2b3c4d): BRK/B and BRK_B, both in one run,
    must not share a file. ``empty`` stands for an empty name."""
    name = str(name)
    safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in name)
    if safe == name and name:
        return name
    return f"{safe or empty}-{hashlib.blake2b(name.encode(), digest_size=4).hexdigest()}"
