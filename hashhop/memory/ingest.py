"""Streaming ingest: a context of any length, read in chunks, written into a Memory.

Text arrives in chunks (the generator's blocks, or a file read piece by piece); the
tokenizer splits it into pieces without holding more than a few characters back; each batch
of pieces is embedded and passed through the writer, whose state is the last
`conv_kernel - 1` pieces. What stays is only what the writer chose to keep (packed keys and
token texts) and the last `window` pieces: peak memory is the memory plus one chunk.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hashhop.errors import HashHopError
from hashhop.memory.model import MemoryModel, entry_bias
from hashhop.memory.store import KEPT_KEY_BITS, MemoryStore, balanced_bit_order, pack_signs
from hashhop.memory.texts import pack_texts
from hashhop.tokenize import IdentifierTokenizer

READ_CHARS = 1 << 20
"""Characters read at a time from a file or the generator: ~1.4 MB of working set per 1M."""
ORDER_SAMPLE = 1 << 16
"""Entries whose keys choose the index's bit order (the first ones written, however the
context is chunked): 16 MB of signs held until then."""


@dataclass
class Memory:
    """An ingested context: its entries and index, and what decoding continues from."""

    store: MemoryStore
    recent: list[str]
    """The context's last `window` token texts: the local decoder's view and the writer's state."""
    n_tokens: int
    """Tokens the model read (its own count: one per identifier or symbol run)."""
    model_digest: str
    """The writer that filled it; decoding with another model is refused."""


def model_digest(model: torch.nn.Module) -> str:
    """SHA-256 of the model's weights, in state_dict order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def check_tokenizer(tokenizer: object) -> IdentifierTokenizer:
    if not isinstance(tokenizer, IdentifierTokenizer):
        raise HashHopError("the memory model needs the identifier tokenizer (one token per hash)")
    return tokenizer


@torch.no_grad()
def embed_pieces(model: MemoryModel, tokenizer: IdentifierTokenizer, pieces: list[str]) -> torch.Tensor:
    """Token texts -> their embeddings [1, n, d]."""
    encoded = tokenizer.encode_pieces(pieces)
    features = torch.from_numpy(tokenizer.features(encoded.identifiers))[None]
    ids = torch.tensor([encoded.ids], dtype=torch.long)
    identifiers = model.embedding.identifiers(features) if encoded.identifiers else None
    return model.embedding(ids, identifiers)


class StreamingWriter:
    """Feeds pieces through the writer, chunk after chunk; `finish` builds the indexed Memory.

    Keys are packed in the index's bit order, chosen from the first ORDER_SAMPLE entries'
    signs (held unpacked until then), or given (`bit_order`: a question written after a
    memory's context is keyed in that memory's order); the first KEPT_KEY_BITS are kept."""

    def __init__(self, model: MemoryModel, tokenizer: IdentifierTokenizer, recent: list[str] | None = None,
                 bit_order: np.ndarray | None = None):
        self.model, self.tokenizer = model, check_tokenizer(tokenizer)
        self.recent = list(recent or [])[-model.config.window :]
        self.bit_order = bit_order
        self.key_bits = min(model.config.code_bits, KEPT_KEY_BITS)
        self.pending_signs: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []
        self.texts: list[np.ndarray] = []
        self.biases: list[np.ndarray] = []
        self.n_tokens = 0

    @torch.no_grad()
    def feed(self, pieces: list[str]) -> None:
        if not pieces:
            return
        carry = self.recent[len(self.recent) - (self.model.config.conv_kernel - 1) :] if self.recent else []
        embedded = embed_pieces(self.model, self.tokenizer, carry + pieces)
        key_logits, gate_logits = self.model.writer(embedded[0])
        bias = entry_bias(gate_logits[len(carry) :])
        kept = torch.isfinite(bias).nonzero().flatten()
        self._add_keys(key_logits[len(carry) :][kept].numpy() >= 0)
        self.biases.append(bias[kept].numpy().astype(np.float16))
        self.texts.append(pack_texts([pieces[i] for i in kept.tolist()]))
        self.recent = (self.recent + pieces[-self.model.config.window :])[-self.model.config.window :]
        self.n_tokens += len(pieces)

    def _add_keys(self, signs: np.ndarray) -> None:
        """Pack key signs [n, bits] in the bit order, once it is known."""
        if self.bit_order is not None:
            self.codes.append(pack_signs(signs[:, self.bit_order[: self.key_bits]]))
            return
        self.pending_signs.append(signs)
        if sum(map(len, self.pending_signs)) >= ORDER_SAMPLE:
            self._choose_bit_order()

    def _choose_bit_order(self) -> None:
        pending = np.concatenate(self.pending_signs) if self.pending_signs else np.zeros((0, self.model.config.code_bits), bool)
        self.bit_order = balanced_bit_order(pending[:ORDER_SAMPLE])
        self.pending_signs = []
        self.codes.append(pack_signs(pending[:, self.bit_order[: self.key_bits]]))

    def finish(self, digest: str | None = None) -> Memory:
        """The entries written so far, indexed; `digest` is the model's, if already known."""
        if self.bit_order is None:
            self._choose_bit_order()
        width = max(block.shape[1] for block in self.texts) if self.texts else 1
        texts = [np.pad(block, ((0, 0), (0, width - block.shape[1]))) for block in self.texts]
        codes = np.concatenate(self.codes) if self.codes else np.zeros((0, self.key_bits // 64), np.uint64)
        tokens = np.concatenate(texts) if texts else np.zeros((0, 3), np.uint8)
        biases = np.concatenate(self.biases) if self.biases else np.zeros(0, np.float16)
        self.codes, self.texts, self.biases = [], [], []
        store = MemoryStore.build(codes, tokens, biases, self.bit_order)
        return Memory(store, self.recent, self.n_tokens, digest or model_digest(self.model))


def text_chunks(text: str, chars: int = READ_CHARS) -> Iterator[str]:
    """A text held in memory, `chars` characters at a time (so the writer's batches stay small)."""
    for start in range(0, len(text), chars):
        yield text[start : start + chars]


def file_chunks(path: Path, chars: int = READ_CHARS) -> Iterator[str]:
    """A text file, `chars` characters at a time."""
    try:
        with open(path, encoding="ascii") as file:
            while chunk := file.read(chars):
                yield chunk
    except (OSError, UnicodeDecodeError) as error:
        raise HashHopError(f"cannot read {path}: {error}") from None


def ingest(
    model: MemoryModel,
    tokenizer: IdentifierTokenizer,
    chunks: Iterable[str],
    total_chars: int | None = None,
    progress: bool = True,
) -> Memory:
    """Write a context given as text chunks into a new Memory (a progress bar counts tokens/s)."""
    model.eval()
    writer = StreamingWriter(model, tokenizer)
    began = time.perf_counter()

    def counted() -> Iterator[str]:
        for chunk in chunks:
            yield chunk
            bar.update(len(chunk))
            bar.set_postfix(tokens_per_s=f"{writer.n_tokens / max(1e-9, time.perf_counter() - began):,.0f}")

    with tqdm(total=total_chars, unit="char", unit_scale=True, desc="ingest", disable=not progress) as bar:
        for pieces in tokenizer.stream_pieces(counted()):
            writer.feed(pieces)
    return writer.finish()
