"""The one interface every model hides behind: a batch of prompts in, completions out.

A new backend is one file that satisfies `Backend`; the harness, the cache and the results
know nothing else about it.
"""

from dataclasses import dataclass
from typing import Protocol

from hashhop.errors import HashHopError


@dataclass(frozen=True)
class Completion:
    """One model answer with what it cost, as the results file records it.

    Token counts are the model's own (server `usage` or local tokenizer), or None where the
    backend cannot know them; `latency_s` is the wall time the caller waited for this answer.
    """

    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float


class Backend(Protocol):
    """A model the harness can ask: everything else about it stays behind this line."""

    def settings(self) -> dict[str, object]:
        """Everything that can change an answer (model, endpoint, temperature, template...).

        JSON-serializable and free of secrets: it keys the answer cache and is written next
        to every result. Portable too, so runs on several machines merge and caches move:
        `model` is a name (an API model name, a file or directory name), never a path, and
        a model read from local files adds `model_digest` (see `hashhop.model_digest`).
        """
        ...

    def count_tokens(self, text: str) -> int | None:
        """Tokens of `text` in the model's own tokenizer, or None where it is not reachable.

        Prompts are sized with it (RULER's rule); the harness falls back to characters when
        it gets None, and says so.
        """
        ...

    @property
    def context_window(self) -> int | None:
        """The most tokens (prompt plus completion) the model accepts, or None if unknown."""
        ...

    def complete(self, prompts: list[str], max_new_tokens: int) -> list[Completion]:
        """Greedy completions of `prompts`, in the same order, at most `max_new_tokens` each."""
        ...


def model_identity(settings: dict[str, object]) -> str:
    """What names the model in results: its content digest, or for an API model its name."""
    return str(settings.get("model_digest") or settings["model"])


def user_turn(prompt: str) -> list[dict[str, str]]:
    """The chat a chat model is given: the prompt as one user turn, with no system prompt of
    ours, so every backend that applies a chat template asks the same question."""
    return [{"role": "user", "content": prompt}]


def check_context_window(prompt_tokens: int, max_new_tokens: int, window: int | None, model: str) -> None:
    """Refuse a prompt whose answer would not fit the model's context window: it is never cut."""
    if window is not None and prompt_tokens + max_new_tokens > window:
        raise HashHopError(
            f"a prompt of {prompt_tokens} tokens plus {max_new_tokens} new ones exceeds "
            f"the context window of {window} tokens of {model}"
        )
