"""Evaluate one backend over a grid of context sizes x hops x answer modes, resumably.

The data path: grid -> specs -> samples sized in the model's own tokens -> instruction
prompts -> answers (from the SQLite cache, else the backend) -> scores -> results.jsonl.
Every answer is cached the moment it arrives, so a killed run loses nothing and the same
command run again asks the model nothing twice. `results.jsonl` is rebuilt from the cache
on every run and appears only when complete.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from hashhop import __version__
from hashhop.backends.base import Backend, Completion, model_identity
from hashhop.cache import AnswerCache
from hashhop.dataset import atomic_output, make_output_dir
from hashhop.errors import HashHopError
from hashhop.fit import make_sample
from hashhop.permutation import derive_key
from hashhop.prompting import DEFAULT_TEMPLATE, instruction_prompt, reply_to_score
from hashhop.render import completion_text
from hashhop.score import QueryScore, score_sample
from hashhop.task import TaskSpec, Unit

ANSWER_TOKEN_FACTOR = 2
"""A model may write up to this many times the tokens of the expected answer lines..."""
ANSWER_TOKEN_MARGIN = 64
"""...plus this many, for a header or a sentence around them."""
FALLBACK_CHARS_PER_TOKEN = 3.0


@dataclass(frozen=True)
class Grid:
    """What to evaluate: every size x hops x mode, `samples` prompts each."""

    sizes: tuple[int, ...]
    """Size of the hash list in `unit` (the instructions add their own)."""
    unit: Unit = "tokens"
    """tokens: sized to the model's own tokenizer (RULER's rule); chars: the same prompts for
    every model, as a standard suite needs."""
    hops: tuple[int, ...] = (1, 2)
    cot_modes: tuple[bool, ...] = (False,)
    samples: int = 4
    queries: int = 1
    hash_len: int = 16
    seed: int = 0
    suite: str | None = None
    """The standard suite this grid is (see `hashhop.suite`), written into every result row."""

    def __post_init__(self) -> None:
        """Check every spec now, before a backend loads a model (which can take minutes)."""
        if not (self.sizes and self.hops and self.cot_modes):
            raise HashHopError("a grid needs at least one size, one hop count and one answer mode")
        if self.samples < 1:
            raise HashHopError(f"samples must be at least 1, got {self.samples}")
        self.specs(tokenizer=None)

    def specs(self, tokenizer: str | None) -> list[tuple[int, TaskSpec]]:
        """(sample index, spec) per prompt. CoT and skip share haystacks, so they pair up."""
        return [
            (index, TaskSpec(
                size=size, unit=self.unit, chars_per_token=FALLBACK_CHARS_PER_TOKEN, hops=hops,
                hash_len=self.hash_len, queries=self.queries, cot=cot,
                tokenizer=tokenizer if self.unit == "tokens" else None,
                seed=derive_key(self.seed ^ derive_key(size, hops), index),
            ))
            for size in self.sizes
            for hops in self.hops
            for cot in self.cot_modes
            for index in range(self.samples)
        ]


@dataclass(frozen=True)
class Task:
    """One prompt to ask, with what is needed to grade and record its answer."""

    index: int
    spec: TaskSpec
    prompt: str
    """The full instruction prompt; its pair lines are the prompt the scorer diagnoses against."""
    expected: str
    max_new_tokens: int
    sizing: str


def _tasks(backend: Backend, grid: Grid, template: str) -> Iterator[Task]:
    context_window = backend.context_window
    probe = backend.count_tokens("probe")
    counter = backend.count_tokens if probe is not None else None
    tokenizer = backend.settings().get("model") if counter else None
    if grid.unit == "chars":
        sizing = "chars (the same prompts for every model)"
    else:
        sizing = "model tokenizer" if counter else f"chars-per-token fallback ({FALLBACK_CHARS_PER_TOKEN})"
    for index, spec in grid.specs(str(tokenizer) if tokenizer else None):
        sample = make_sample(spec, counter)
        prompt = instruction_prompt(sample, template)
        expected = completion_text(sample)
        measure = counter or (lambda text: len(text) / FALLBACK_CHARS_PER_TOKEN)
        max_new_tokens = int(ANSWER_TOKEN_FACTOR * measure(expected) + ANSWER_TOKEN_MARGIN)
        if context_window is not None:
            needed = int(measure(prompt)) + max_new_tokens
            if needed > context_window:
                raise HashHopError(
                    f"a {spec.size}-token prompt needs {needed} tokens with its answer, but the "
                    f"model's context window is {context_window}: choose smaller --tokens "
                    "(prompts are never truncated)"
                )
        yield Task(index, spec, prompt, expected, max_new_tokens, sizing)


def run_metadata(backend: Backend, model_label: str) -> dict[str, object]:
    """What makes a run reproducible and findable: versions, commit, command, machine.

    Nothing in it is a path of this machine, so runs from several machines merge.
    """
    settings = backend.settings()
    return {
        "package_version": __version__,
        "git_commit": _git_commit(),
        "command": portable_command(sys.argv),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "backend": settings,
        "model_label": model_label,
        "model_digest": model_identity(settings),
        "started": _now(),
        "finished": None,
    }


def portable_command(argv: list[str]) -> str:
    """The command line with every absolute path cut to its last part: `/home/me/run` -> `run`."""

    def portable(argument: str) -> str:
        option, equals, value = argument.rpartition("=") if argument.startswith("-") else ("", "", argument)
        path = Path(value).expanduser()
        return option + equals + (path.name if path.is_absolute() else value)

    return " ".join(portable(argument) for argument in [Path(argv[0]).name, *argv[1:]])


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise HashHopError(f"--batch-size must be at least 1, got {batch_size}")


def evaluate(
    backend: Backend,
    grid: Grid,
    out_dir: Path,
    model_label: str,
    template: str = DEFAULT_TEMPLATE,
    batch_size: int = 4,
) -> list[dict]:
    """Run the grid, write DIR/run.json, DIR/cache.sqlite and DIR/results.jsonl; return the rows.

    Prompts are sized (the backend's first requests) before DIR is touched, so a server that
    cannot be reached or a prompt too long for the model leaves no run behind.
    """
    check_batch_size(batch_size)
    metadata = run_metadata(backend, model_label)
    tasks = list(_tasks(backend, grid, template))
    out_dir = make_output_dir(out_dir)
    _write_json(out_dir / "run.json", metadata)
    settings = backend.settings()
    rows: list[dict] = []
    with AnswerCache(out_dir) as cache, tqdm(
        total=len(tasks), desc=f"eval {model_label}", unit="prompt"
    ) as progress:
        for start in range(0, len(tasks), batch_size):
            batch = tasks[start : start + batch_size]
            for task, completion in zip(batch, _answers(backend, cache, settings, batch)):
                scores = score_sample(task.prompt, task.expected, reply_to_score(task.prompt, completion.text))
                rows += [_result_row(task, completion, score, settings, model_label, grid.suite) for score in scores]
            progress.update(len(batch))
            correct = sum(row["correct"] for row in rows)
            progress.set_postfix(accuracy=f"{correct / len(rows):.1%}")
    with atomic_output(out_dir / "results.jsonl") as file:
        file.writelines(json.dumps(row).encode() + b"\n" for row in rows)
    _write_json(out_dir / "run.json", {**metadata, "finished": _now()})
    return rows


def _answers(backend: Backend, cache: AnswerCache, settings: dict, batch: list[Task]) -> list[Completion]:
    """Cached answers where there are some; the backend is asked only for the rest."""
    answers: list[Completion | None] = [None] * len(batch)
    by_budget: dict[int, list[int]] = {}
    for i, task in enumerate(batch):
        by_budget.setdefault(task.max_new_tokens, []).append(i)
    for budget, indices in by_budget.items():
        prompts = [batch[i].prompt for i in indices]
        found = cache.get_many(settings, prompts, budget)
        missing = [k for k, completion in enumerate(found) if completion is None]
        if missing:
            fresh = backend.complete([prompts[k] for k in missing], budget)
            cache.put(settings, [prompts[k] for k in missing], budget, fresh)
            for k, completion in zip(missing, fresh):
                found[k] = completion
        for i, completion in zip(indices, found):
            answers[i] = completion
    return answers


def _result_row(
    task: Task, completion: Completion, score: QueryScore, settings: dict, model_label: str, suite: str | None
) -> dict:
    return {
        "spec": task.spec.to_dict(),
        "sample_index": task.index,
        "backend": settings,
        "model_label": model_label,
        "model_digest": model_identity(settings),
        "suite": suite,
        "sizing": task.sizing,
        "query": score.query,
        "target": score.target,
        "completion": completion.text,
        "answer": score.answer,
        "correct": score.correct,
        "hop_credit": score.hop_credit,
        "diagnosis": score.kind.value if score.kind else None,
        "first_wrong_hop": score.first_wrong_hop,
        "latency_s": completion.latency_s,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
    }


def _write_json(path: Path, value: dict) -> None:
    with atomic_output(path) as file:
        file.write(json.dumps(value, indent=2).encode() + b"\n")


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5, check=False
        )
    except OSError:
        return None
    return result.stdout.strip() or None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
