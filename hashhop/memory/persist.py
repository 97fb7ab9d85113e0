"""Save and load an ingested Memory: one .npz file, written atomically, with a format version.

A long context is read once (ingest) and queried many times: the file holds the packed keys
(and their bit order), tokens and gate scores in index order, the last window of the context,
the token count, and the digest of the model that wrote it (decoding with another model is
refused).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from hashhop.dataset import atomic_output
from hashhop.errors import HashHopError
from hashhop.memory.ingest import Memory
from hashhop.memory.store import MemoryStore

FORMAT = "hashhop-memory"
FORMAT_VERSION = 4
"""4: keys keep KEPT_KEY_BITS bits, token texts 6 bits a character (3: all key bits, ASCII)."""


def save_memory(memory: Memory, path: Path) -> None:
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "recent": memory.recent,
            "n_tokens": memory.n_tokens, "model_digest": memory.model_digest}
    with atomic_output(Path(path)) as file:
        np.savez(file, codes=memory.store.codes, tokens=memory.store.tokens, bias=memory.store.bias,
                 bit_order=memory.store.bit_order,
                 meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))


def load_memory(path: Path) -> Memory:
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes())
            if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
                raise HashHopError(
                    f"{path} is not a hashhop memory of format version {FORMAT_VERSION} "
                    f"(found {meta.get('format')!r} version {meta.get('version')!r})"
                )
            store = MemoryStore(data["codes"], data["tokens"], data["bias"], data["bit_order"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise HashHopError(f"cannot read memory {path}: {error}") from None
    return Memory(store, list(meta["recent"]), int(meta["n_tokens"]), str(meta["model_digest"]))
