"""A GGUF model run in this process by llama.cpp (llama-cpp-python) as a backend.

transformers de-quantizes a GGUF file to fp32 before it runs it; llama.cpp runs the quantized
weights as they are, so a model loads in a fraction of a second instead of half a minute and
keeps its quantized size in memory (per prompt it was not faster on a shared 2-core CPU:
benchmarks/RESULTS.md). Prompts are sized and counted with the GGUF's own vocabulary, an
instruction-tuned model gets the chat template stored in its file as the hf backend applies
it, and decoding is greedy. Nothing but the file is read: runs are reproducible offline.
"""

import os
import time
from pathlib import Path

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from hashhop.backends.base import Completion, check_context_window, user_turn
from hashhop.backends.bundled import local_model
from hashhop.errors import HashHopError
from hashhop.model_digest import model_digest

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
FIRST_CONTEXT_TOKENS = 512
"""The context allocated before any prompt is asked: enough to tokenize, and cheap."""


class LlamaCppBackend:
    """Greedy completions from one `.gguf` file, on the CPU.

    The KV cache is allocated for what the longest prompt so far needs (rounded up to a power
    of two, at most the model's trained context), not for the trained context itself: a model
    trained on 128K tokens would otherwise claim gigabytes to answer 2K-token prompts.
    `threads` (default: every CPU this process may use; llama.cpp's own default, half of
    them, leaves a core idle on a machine without SMT) is not a setting of the answers: one
    thread and two gave the same ones here.
    """

    def __init__(
        self, *, model: str | Path, chat_template: bool = True, threads: int | None = None
    ) -> None:
        path = local_model(model, "model", "a .gguf file or a bundled model name (smollm2-135m)")
        if not path.is_file():
            raise HashHopError(f"{path} is not a file: the llamacpp backend reads one .gguf file")
        if threads is not None and threads < 1:
            raise HashHopError(f"threads must be at least 1, not {threads}")
        try:
            self.digest = model_digest(path)
        except OSError as error:
            raise HashHopError(f"cannot read {path}: {error.strerror}") from None
        self.path = path
        self.threads = threads or len(os.sched_getaffinity(0))
        self._llama = self._load(FIRST_CONTEXT_TOKENS)
        self._trained_context = llama_cpp.llama_model_n_ctx_train(self._llama.model)
        template = self._llama.metadata.get(CHAT_TEMPLATE_KEY)
        self._chat: Jinja2ChatFormatter | None = None
        if chat_template and template:
            self._chat = Jinja2ChatFormatter(
                template,
                eos_token=self._token_text(self._llama.token_eos()),
                bos_token=self._token_text(self._llama.token_bos()),
            )
        self.chat_template = self._chat is not None

    def settings(self) -> dict[str, object]:
        """The model file by name and digest, and whether its chat template wraps prompts."""
        return {
            "backend": "llamacpp",
            "model": self.path.name,
            "model_digest": self.digest,
            "chat_template": self.chat_template,
        }

    @property
    def context_window(self) -> int:
        """The context the model was trained on, from the GGUF."""
        return self._trained_context

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` itself, without the few the chat template wraps around it."""
        return len(self._llama.tokenize(text.encode(), add_bos=False))

    def complete(self, prompts: list[str], max_new_tokens: int) -> list[Completion]:
        """One prompt at a time; each answer reports its own wall time."""
        return [self._complete_one(prompt, max_new_tokens) for prompt in prompts]

    def _complete_one(self, prompt: str, max_new_tokens: int) -> Completion:
        if self._chat:
            text = self._chat(messages=user_turn(prompt)).prompt
            tokens = self._llama.tokenize(text.encode(), add_bos=False, special=True)
        else:
            tokens = self._llama.tokenize(prompt.encode(), add_bos=True)
        check_context_window(len(tokens), max_new_tokens, self.context_window, self.path.name)
        self._fit_context(len(tokens) + max_new_tokens)
        start = time.perf_counter()
        # From an empty KV cache every time: an answer must not depend on the prompt before it.
        self._llama.reset()
        answer: list[int] = []
        for token in self._llama.generate(tokens, temp=0.0):
            if llama_cpp.llama_vocab_is_eog(self._vocab(), token):
                break
            answer.append(token)
            if len(answer) == max_new_tokens:
                break
        latency_s = time.perf_counter() - start
        text = self._llama.detokenize(answer).decode("utf-8", errors="replace")
        return Completion(text, len(tokens), len(answer), latency_s)

    def _load(self, n_ctx: int) -> llama_cpp.Llama:
        try:
            return llama_cpp.Llama(
                str(self.path), n_ctx=n_ctx, n_threads=self.threads, verbose=False
            )
        except ValueError as error:
            raise HashHopError(f"llama.cpp cannot load {self.path}: {error}") from None

    def _fit_context(self, tokens: int) -> None:
        """Reload with a larger context when `tokens` would not fit the one allocated."""
        if tokens > self._llama.n_ctx():
            self._llama.close()
            self._llama = self._load(min(self._trained_context, 1 << (tokens - 1).bit_length()))

    def _vocab(self) -> llama_cpp.llama_vocab_p:
        return llama_cpp.llama_model_get_vocab(self._llama.model)

    def _token_text(self, token: int) -> str:
        return self._llama.detokenize([token], special=True).decode("utf-8", errors="replace")
