"""A local transformers model (a directory or a `.gguf` file) as a backend.

Greedy, batched generation with left padding, so every prompt's answer starts right after
its own last token. Instruction-tuned models get their chat template unless told not to.
Nothing is fetched from the Hugging Face hub: benchmark runs must be reproducible offline.
"""

import os
import time
from pathlib import Path

# Before transformers reads it: nothing this backend does may reach the hub.
os.environ["HF_HUB_OFFLINE"] = "1"

import torch
import transformers

from hashhop.backends.base import Completion, check_context_window, user_turn
from hashhop.backends.bundled import local_model
from hashhop.errors import HashHopError
from hashhop.model_digest import model_digest

DEVICES = ("auto", "cpu", "cuda")
DEFAULT_BATCH_SIZE = 8
# Config fields that name the longest sequence a model was built for, most common first.
CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length")


class HFBackend:
    """Greedy completions from a transformers causal LM loaded from local files only.

    `model` is a model directory or a `.gguf` file (dequantized on load). `batch_size`
    bounds how many prompts share one forward pass, which is a memory limit, not a setting
    of the answers.
    """

    def __init__(
        self,
        *,
        model: str | Path,
        device: str = "auto",
        dtype: str = "auto",
        chat_template: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        path = local_model(model, "model", "a model directory or a .gguf file")
        if device not in DEVICES:
            raise HashHopError(f"device must be one of {DEVICES}, not {device!r}")
        if batch_size < 1:
            raise HashHopError(f"batch_size must be at least 1, not {batch_size}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise HashHopError("device cuda asked for, but torch sees no CUDA GPU: use cpu")
        if dtype == "auto":
            dtype = "bfloat16" if device == "cuda" else "float32"
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise HashHopError(f"dtype must name a torch dtype such as float32, not {dtype!r}")
        gguf = {"gguf_file": path.name} if path.suffix == ".gguf" else {}
        source = path.parent if gguf else path
        try:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(
                source, local_files_only=True, **gguf
            )
            self._model = transformers.AutoModelForCausalLM.from_pretrained(
                source, local_files_only=True, dtype=torch_dtype, **gguf
            )
        except (OSError, ValueError, ImportError) as error:
            reason = " ".join(str(error).split())
            raise HashHopError(
                f"cannot load a causal language model from {path}: {reason}"
            ) from None
        self._model.to(device).eval()
        self._tokenizer.padding_side = "left"
        stop = self._model.generation_config.eos_token_id
        self._stop_ids = set(stop if isinstance(stop, list) else [stop])
        self._stop_ids.add(self._tokenizer.eos_token_id)
        if self._tokenizer.pad_token is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        self.path = path
        self.digest = model_digest(path)
        self.device = device
        self.dtype = dtype
        self.chat_template = chat_template and self._tokenizer.chat_template is not None
        self.batch_size = batch_size

    def settings(self) -> dict[str, object]:
        """The model file by name and digest, and how it is run; device and dtype can change
        greedy answers."""
        return {
            "backend": "hf",
            "model": self.path.name,
            "model_digest": self.digest,
            "device": self.device,
            "dtype": self.dtype,
            "chat_template": self.chat_template,
        }

    @property
    def context_window(self) -> int | None:
        """The positions the model was built for, from its config."""
        for field in CONTEXT_FIELDS:
            value = getattr(self._model.config, field, None)
            if isinstance(value, int):
                return value
        return None

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` itself, without the few the chat template wraps around it."""
        return len(self._tokenizer(text, add_special_tokens=False).input_ids)

    def complete(self, prompts: list[str], max_new_tokens: int) -> list[Completion]:
        """Generate in batches of `batch_size`; each answer reports its batch's wall time."""
        completions: list[Completion] = []
        for start in range(0, len(prompts), self.batch_size):
            completions += self._complete_batch(
                prompts[start : start + self.batch_size], max_new_tokens
            )
        return completions

    def _complete_batch(self, prompts: list[str], max_new_tokens: int) -> list[Completion]:
        if self.chat_template:
            texts = [
                self._tokenizer.apply_chat_template(
                    user_turn(prompt), add_generation_prompt=True, tokenize=False
                )
                for prompt in prompts
            ]
        else:
            texts = prompts
        inputs = self._tokenizer(
            texts, return_tensors="pt", padding=True, add_special_tokens=not self.chat_template
        ).to(self.device)
        prompt_tokens = inputs.attention_mask.sum(dim=1).tolist()
        check_context_window(max(prompt_tokens), max_new_tokens, self.context_window, self.path.name)
        start = time.perf_counter()
        with torch.inference_mode():
            output = self._model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self._tokenizer.pad_token_id,
            )
        latency_s = time.perf_counter() - start
        completions = []
        for row, count in zip(output[:, inputs.input_ids.shape[1] :].tolist(), prompt_tokens):
            answer = row[: self._answer_length(row)]
            text = self._tokenizer.decode(answer, skip_special_tokens=True)
            completions.append(Completion(text, count, len(answer), latency_s))
        return completions

    def _answer_length(self, tokens: list[int]) -> int:
        """Tokens generated before the model stopped: the rest of the row is padding."""
        return next((i for i, token in enumerate(tokens) if token in self._stop_ids), len(tokens))
