"""The project's own checkpoints (safetensors weights + JSON config) as a backend.

The model reads the prompt's token ids and writes tokens greedily until it closes the answer
line it was handed: use the `completion` template (the CLI's default for this backend).
"""

import hashlib
import time
from pathlib import Path

import torch

from hashhop.backends.base import Completion
from hashhop.checkpoint import WEIGHTS_FILE, load_checkpoint
from hashhop.generation import greedy_continue
from hashhop.memory.decode import MemoryDecoder
from hashhop.memory.ingest import Memory, ingest, text_chunks
from hashhop.model_digest import checkpoint_digest

QUESTION_PIECES = 64
"""A memory model is handed a prompt's last tokens as its question (written into the
decoder's overlay, searched exactly) and ingests the rest, which it keeps for the next
prompt: prompts that differ only near their end, as the same haystack asked with and
without chain of thought does (`eval --both`), are ingested once."""


class CheckpointBackend:
    """Greedy completions from a checkpoint, or the latest checkpoint of a training run."""

    def __init__(self, *, model: str | Path, device: str = "cpu", batch_size: int = 8) -> None:
        self.loaded = load_checkpoint(Path(model).expanduser(), device)
        config = self.loaded.config
        self.digest = checkpoint_digest(self.loaded.directory / WEIGHTS_FILE, [config["model"], config["tokenizer"]])
        self.device = device
        self.batch_size = batch_size
        self._last_memory: tuple[bytes, Memory] | None = None
        """The digest of the text a memory model last ingested, and its memory."""

    def settings(self) -> dict[str, object]:
        """The checkpoint by name and by the digest of its weights, model config and tokenizer
        (its step is recorded beside)."""
        return {
            "backend": "hashhop",
            "model": self.loaded.directory.name,
            "model_digest": self.digest,
            "step": self.loaded.config["step"],
        }

    def count_tokens(self, text: str) -> int | None:
        return self.loaded.tokenizer.count(text)

    @property
    def context_window(self) -> int | None:
        return self.loaded.config["model"].get("max_len") or None

    def complete(self, prompts: list[str], max_new_tokens: int) -> list[Completion]:
        if self.loaded.config["model"]["arch"] == "memory":
            return [self._complete_from_memory(prompt, max_new_tokens) for prompt in prompts]
        completions = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            began = time.perf_counter()
            contexts = [self.loaded.tokenizer.encode(prompt) for prompt in chunk]
            texts = greedy_continue(self.loaded.model, self.loaded.tokenizer, contexts, max_new_tokens, torch.device(self.device))
            latency = time.perf_counter() - began
            for context, text in zip(contexts, texts):
                new_tokens = len(self.loaded.tokenizer.encode(text, identifiers=context.identifiers).ids)
                completions.append(Completion(text, len(context.ids), new_tokens, latency))
        return completions

    def _complete_from_memory(self, prompt: str, max_new_tokens: int) -> Completion:
        """The memory model ingests the prompt but its last QUESTION_PIECES tokens (streaming,
        or not at all if the previous prompt began with the same text), then decodes from its
        memory with those tokens as the question."""
        began = time.perf_counter()
        model, tokenizer = self.loaded.model, self.loaded.tokenizer
        pieces = tokenizer.pieces(prompt)
        split = max(len(pieces) - QUESTION_PIECES, 1 if len(pieces) > 1 else 0)
        context = "".join(pieces[:split])
        digest = hashlib.sha256(context.encode()).digest()
        if self._last_memory is None or self._last_memory[0] != digest:
            self._last_memory = (digest, ingest(model, tokenizer, text_chunks(context), progress=False))
        memory = self._last_memory[1]
        decoded = MemoryDecoder(model, tokenizer, memory).continue_text("".join(pieces[split:]), max_new_tokens)
        return Completion(decoded.text, len(pieces), decoded.n_tokens, time.perf_counter() - began)
