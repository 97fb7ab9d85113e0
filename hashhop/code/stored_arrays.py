"""How the learned parts of code search are stored: `NAME.npz` (arrays, no pickle) and
`NAME.json` (settings), as files in a directory or entries in an index."""

from __future__ import annotations

import io
import json

import numpy as np

from hashhop.errors import HashHopError


def to_stored(name: str, arrays: dict[str, np.ndarray], settings: dict) -> dict[str, bytes]:
    data = io.BytesIO()
    np.savez(data, **arrays)
    return {f"{name}.npz": data.getvalue(), f"{name}.json": json.dumps(settings).encode()}


def from_stored(files: dict[str, bytes], name: str, array_names: tuple[str, ...], where: str, what: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(settings, float32 arrays) of `name`; a missing or unreadable file is one clear error
    naming `what` was looked for `where`."""
    try:
        settings = json.loads(files[f"{name}.json"])
        with np.load(io.BytesIO(files[f"{name}.npz"]), allow_pickle=False) as stored:
            return settings, {array: stored[array].astype(np.float32) for array in array_names}
    except (KeyError, ValueError) as error:
        raise HashHopError(f"{where} holds no readable {what} ({error})") from None
