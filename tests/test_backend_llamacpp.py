"""The llama.cpp backend on a real model: SmolLM2-135M-Instruct's GGUF, run in process.

SmolLM2 fails HashHop; what is tested is that prompts are sized in the GGUF's own tokens,
that every answer is asked, graded, cached and written as the other backends write it, and
that a run killed midway resumes without asking anything twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hashhop.backends import make_backend
from hashhop.backends.bundled import resolve_model
from hashhop.errors import HashHopError
from hashhop.fit import make_sample
from hashhop.harness import Grid, evaluate
from hashhop.render import prompt_text
from hashhop.task import TaskSpec

pytest.importorskip("llama_cpp")
SMOLLM2 = Path(resolve_model("smollm2-135m"))

SMOLLM2_CONTEXT_WINDOW = 8192
MAX_NEW_TOKENS = 16
HASH_LIST_TOKENS = 150
GRID = Grid(sizes=(HASH_LIST_TOKENS,), hops=(1, 2), samples=1)
SHORT_QUESTIONS = ["What is 2+2?", "Name a colour."]


class Killable:
    """A backend that records the prompts it is asked and, once it has answered
    `answers_before_kill` of them, dies as a killed process would: mid-run."""

    def __init__(self, backend, answers_before_kill: int | None = None) -> None:
        self._backend = backend
        self._answers_before_kill = answers_before_kill
        self.asked: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self._backend, name)

    def complete(self, prompts: list[str], max_new_tokens: int):
        if self._answers_before_kill is not None and len(self.asked) >= self._answers_before_kill:
            raise KeyboardInterrupt
        self.asked += prompts
        return self._backend.complete(prompts, max_new_tokens)


@pytest.fixture(scope="module")
def backend():
    return make_backend("llamacpp", model="smollm2-135m", threads=1)


@pytest.fixture(scope="module")
def run(backend, tmp_path_factory):
    """A grid run killed after its first answer, then the same run again to the end."""
    out = tmp_path_factory.mktemp("run") / "smollm2"
    killed = Killable(backend, answers_before_kill=1)
    with pytest.raises(KeyboardInterrupt):
        evaluate(killed, GRID, out, "smollm2", batch_size=1)
    results_after_kill = (out / "results.jsonl").exists()
    resumed = Killable(backend)
    rows = evaluate(resumed, GRID, out, "smollm2", batch_size=1)
    return {"out": out, "killed": killed, "resumed": resumed, "rows": rows,
            "results_after_kill": results_after_kill}


def test_a_killed_run_resumes_asking_only_the_prompts_it_had_not(run):
    assert len(run["killed"].asked) == 1 and not run["results_after_kill"]
    assert len(run["resumed"].asked) == 1
    assert run["resumed"].asked != run["killed"].asked
    assert len(run["rows"]) == 2


def test_a_finished_run_asks_the_model_nothing_again(backend, run):
    again = Killable(backend)
    assert evaluate(again, GRID, run["out"], "smollm2", batch_size=1) == run["rows"]
    assert again.asked == []


def test_rows_are_written_as_every_backend_writes_them(backend, run):
    written = [json.loads(line) for line in (run["out"] / "results.jsonl").read_text().splitlines()]
    assert written == run["rows"]
    for row in written:
        assert row["backend"] == backend.settings()
        assert row["model_digest"] == backend.settings()["model_digest"]
        assert isinstance(row["correct"], bool) and row["completion"].strip()
        assert row["latency_s"] > 0 and row["completion_tokens"] > 0


def test_hash_lists_are_sized_in_the_gguf_tokens(backend, run):
    for row in run["rows"]:
        assert row["sizing"] == "model tokenizer"
        assert row["spec"]["tokenizer"] == SMOLLM2.name
        pairs = prompt_text(make_sample(TaskSpec(**row["spec"]), backend.count_tokens))
        longest_line = max(backend.count_tokens(line) for line in pairs.split("\n"))
        assert HASH_LIST_TOKENS - longest_line - 1 < backend.count_tokens(pairs) <= HASH_LIST_TOKENS
        assert row["prompt_tokens"] > HASH_LIST_TOKENS  # plus the instructions and the chat template


def test_an_answer_does_not_depend_on_the_prompt_asked_before_it(backend):
    together = backend.complete(SHORT_QUESTIONS, MAX_NEW_TOKENS)
    alone = backend.complete(SHORT_QUESTIONS[1:], MAX_NEW_TOKENS)
    assert together[1].text == alone[0].text
    assert together[1].prompt_tokens == alone[0].prompt_tokens


def test_generation_stops_at_the_end_of_the_turn(backend):
    answer = backend.complete(SHORT_QUESTIONS[:1], MAX_NEW_TOKENS)[0]
    assert "4" in answer.text
    assert "<|im_end|>" not in answer.text
    assert answer.completion_tokens < MAX_NEW_TOKENS


def test_count_tokens_uses_the_gguf_vocabulary(backend):
    assert backend.count_tokens("The capital of France is") == 5  # as transformers counts it


def test_context_window_is_the_context_the_model_was_trained_on(backend):
    assert backend.context_window == SMOLLM2_CONTEXT_WINDOW


def test_a_prompt_beyond_the_context_window_is_refused(backend):
    with pytest.raises(HashHopError, match="context window of 8192"):
        backend.complete(["word " * SMOLLM2_CONTEXT_WINDOW], MAX_NEW_TOKENS)


def test_settings_name_the_model_file_not_its_path(backend):
    settings = backend.settings()
    assert settings["model"] == SMOLLM2.name
    assert settings["model_digest"].startswith("sha256:")
    assert settings["chat_template"] is True
    json.dumps(settings)


def hashhop_eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hashhop", "eval", "--backend", "llamacpp", *args],
                          capture_output=True, text=True, check=False)


def test_a_missing_model_file_is_one_line_and_exit_2(tmp_path):
    result = hashhop_eval("--model", str(tmp_path / "missing.gguf"), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no model at" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_hash_list_beyond_the_context_window_is_refused_before_anything_is_asked(tmp_path):
    result = hashhop_eval("--model", "smollm2-135m", "--tokens", str(SMOLLM2_CONTEXT_WINDOW),
                          "--threads", "1", "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "context window is 8192" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("not a model")
    with pytest.raises(HashHopError, match="llama.cpp cannot load"):
        make_backend("llamacpp", model=not_gguf)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(HashHopError, match="not a file"):
        make_backend("llamacpp", model=tmp_path)
