"""The project's own checkpoints (safetensors weights + JSON config) as a backend.

The model reads the prompt's token ids and writes tokens greedily until it closes the answer
line it was handed: use the `completion` template (the CLI's default for this backend).
"""

import time
from pathlib import Path

import torch

from hashhop.backends.base import Completion
from hashhop.checkpoint import WEIGHTS_FILE, load_checkpoint
from hashhop.generation import greedy_continue
from hashhop.memory.decode import MemoryDecoder
from hashhop.memory.ingest import ingest, text_chunks
from hashhop.model_digest import checkpoint_digest


class CheckpointBackend:
    """Greedy completions from a checkpoint, or the latest checkpoint of a training run."""

    def __init__(self, *, model: str | Path, device: str = "cpu", batch_size: int = 8) -> None:
        self.loaded = load_checkpoint(Path(model).expanduser(), device)
        config = self.loaded.config
        self.digest = checkpoint_digest(self.loaded.directory / WEIGHTS_FILE, [config["model"], config["tokenizer"]])
        self.device = device
        self.batch_size = batch_size

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
        """The memory model ingests the prompt but its last token (streaming), then decodes
        from its memory with that token as the question."""
        began = time.perf_counter()
        model, tokenizer = self.loaded.model, self.loaded.tokenizer
        pieces = tokenizer.pieces(prompt)
        memory = ingest(model, tokenizer, text_chunks("".join(pieces[:-1])), progress=False)
        decoded = MemoryDecoder(model, tokenizer, memory).continue_text(pieces[-1], max_new_tokens)
        return Completion(decoded.text, memory.n_tokens, decoded.n_tokens, time.perf_counter() - began)
