"""`evaluate`: one row per asked query, resumable from the cache, prompts never truncated.

The backend here is a test double that counts what it is asked (the harness's behaviour is
under test, not a model's); real models are exercised in test_eval_smollm2.py.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from hashhop.backends.base import Completion
from hashhop.errors import HashHopError
from hashhop.harness import Grid, evaluate
from hashhop.model_digest import model_digest
from hashhop.prompting import load_template
from hashhop.report import aggregate, load_runs, write_report


class CountingBackend:
    """Answers every prompt with the same sentence and counts the prompts it was asked."""

    def __init__(self, context_window: int | None = None, tokenizer: bool = True, fail_after: int | None = None,
                 model_file: Path | None = None):
        self.asked = 0
        self.window = context_window
        self.tokenizer = tokenizer
        self.fail_after = fail_after
        self.model_file = model_file

    def settings(self) -> dict[str, object]:
        if self.model_file is None:
            return {"backend": "counting", "model": "counting-double"}
        return {"backend": "counting", "model": self.model_file.name, "model_digest": model_digest(self.model_file)}

    def count_tokens(self, text: str) -> int | None:
        return -(-len(text) // 4) if self.tokenizer else None

    @property
    def context_window(self) -> int | None:
        return self.window

    def complete(self, prompts: list[str], max_new_tokens: int) -> list[Completion]:
        if self.fail_after is not None and self.asked + len(prompts) > self.fail_after:
            raise KeyboardInterrupt  # as if the run were killed here
        self.asked += len(prompts)
        return [Completion("I do not know.", self.count_tokens(p), 4, 0.01) for p in prompts]


GRID = Grid(sizes=(200, 400), hops=(1, 2), cot_modes=(False, True), samples=2, queries=2)
N_PROMPTS = 2 * 2 * 2 * 2


def read_results(run_dir):
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def test_every_asked_query_becomes_one_result_row(tmp_path):
    rows = evaluate(CountingBackend(), GRID, tmp_path, model_label="double", batch_size=3)
    assert len(rows) == N_PROMPTS * 2 == len(read_results(tmp_path))
    row = rows[0]
    for field in ("spec", "backend", "query", "target", "completion", "correct", "hop_credit",
                  "diagnosis", "latency_s", "prompt_tokens", "completion_tokens", "sizing"):
        assert field in row
    assert row["sizing"] == "model tokenizer" and row["diagnosis"] == "unparseable"
    assert {(r["spec"]["size"], r["spec"]["hops"], r["spec"]["cot"]) for r in rows} == {
        (size, hops, cot) for size in (200, 400) for hops in (1, 2) for cot in (False, True)
    }


def test_run_json_records_version_commit_command_and_times(tmp_path):
    evaluate(CountingBackend(), GRID, tmp_path, model_label="double")
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["package_version"] and run["command"] and run["machine"]["cpus"]
    assert run["started"] <= run["finished"]
    assert run["backend"] == CountingBackend().settings()


def test_a_second_run_asks_the_model_nothing(tmp_path):
    evaluate(CountingBackend(), GRID, tmp_path, model_label="double")
    first = read_results(tmp_path)
    again = CountingBackend()
    evaluate(again, GRID, tmp_path, model_label="double")
    assert again.asked == 0
    assert read_results(tmp_path) == first


def test_a_killed_run_resumes_without_asking_twice(tmp_path):
    undisturbed = tmp_path / "undisturbed"
    evaluate(CountingBackend(), GRID, undisturbed, model_label="double", batch_size=2)
    killed = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        evaluate(CountingBackend(fail_after=5), GRID, killed, model_label="double", batch_size=2)
    assert not (killed / "results.jsonl").exists()
    resumed = CountingBackend()
    evaluate(resumed, GRID, killed, model_label="double", batch_size=2)
    assert resumed.asked == N_PROMPTS - 4  # two full batches of two landed before the kill
    assert read_results(killed) == read_results(undisturbed)


def test_prompts_are_sized_in_the_models_tokens(tmp_path):
    rows = evaluate(CountingBackend(), GRID, tmp_path, model_label="double")
    for row in rows:
        assert row["spec"]["tokenizer"] == "counting-double"
        instruction_tokens = row["prompt_tokens"] - row["spec"]["size"]
        assert 0 < instruction_tokens < 200  # the hash list fills its budget; the rest is the task


def test_without_a_tokenizer_the_fallback_is_said_in_the_results(tmp_path):
    rows = evaluate(CountingBackend(tokenizer=False), GRID, tmp_path, model_label="double")
    assert all(row["sizing"].startswith("chars-per-token fallback") for row in rows)


def test_a_prompt_larger_than_the_context_window_is_an_error_not_a_cut(tmp_path):
    backend = CountingBackend(context_window=300)
    with pytest.raises(HashHopError, match="context window is 300"):
        evaluate(backend, GRID, tmp_path / "run", model_label="double")
    assert backend.asked == 0
    assert not (tmp_path / "run").exists()  # no run.json that never finishes


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"hops": (0,)}, "hops must be at least 1"),
        ({"hops": ()}, "at least one size, one hop count"),
        ({"samples": 0}, "samples must be at least 1"),
        ({"hash_len": 1}, "hash length must be at least 2"),
    ],
)
def test_a_bad_grid_is_refused_when_built_before_any_model_is_loaded(fields, message):
    with pytest.raises(HashHopError, match=message):
        Grid(**{"sizes": (200,), **fields})


def test_the_run_directory_must_be_in_a_directory_that_exists(tmp_path):
    with pytest.raises(HashHopError, match="does not exist"):
        evaluate(CountingBackend(), GRID, tmp_path / "missing" / "run", model_label="double")


class ContinuingBackend(CountingBackend):
    """A base model's way of answering: it finishes the open answer line the prompt ends with."""

    def complete(self, prompts: list[str], max_new_tokens: int) -> list[Completion]:
        self.asked += len(prompts)
        return [Completion("notAHash'", 10, 2, 0.01) for _ in prompts]


def test_a_reply_that_finishes_the_prompts_open_answer_line_is_graded(tmp_path):
    grid = Grid(sizes=(200,), hops=(1,), samples=2, queries=1)
    rows = evaluate(ContinuingBackend(), grid, tmp_path, model_label="double", template=load_template("completion"))
    assert [(row["answer"], row["diagnosis"]) for row in rows] == [("notAHash", "absent")] * 2


def test_results_from_two_machines_merge_and_name_no_path_of_either(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    grid = Grid(sizes=(200,), hops=(1,), samples=2)
    run_dirs = []
    for machine in ("machine-a", "machine-b"):
        model_file = tmp_path / machine / "models" / "tiny.gguf"
        model_file.parent.mkdir(parents=True)
        shutil.copyfile(Path(__file__), model_file)  # the same bytes at each machine's own path
        run_dir = tmp_path / machine / "run"
        monkeypatch.setattr(sys, "argv", [str(tmp_path / "venv/bin/hashhop"), "eval", "--model", str(model_file),
                                          f"--out={run_dir}", "--label", "tiny"])
        evaluate(CountingBackend(model_file=model_file), grid, run_dir, model_label="tiny")
        run_dirs.append(run_dir)
    report_dir = write_report(run_dirs, tmp_path / "report").html.parent
    assert aggregate(load_runs(run_dirs)).models == ("tiny",)  # one model, pooled
    row = read_results(run_dirs[0])[0]
    assert row["model_label"] == "tiny" and row["model_digest"] == model_digest(Path(__file__))
    written = [file for directory in (*run_dirs, report_dir) for file in directory.iterdir()]
    assert {"results.jsonl", "run.json", "report.html"} <= {file.name for file in written}
    for file in written:
        content = file.read_bytes()
        for machine_path in (str(tmp_path), str(Path.home())):
            assert machine_path.encode() not in content, f"{file.name} names {machine_path}"


def test_a_grid_sized_in_chars_asks_every_model_the_same_prompts_and_stamps_its_suite(tmp_path):
    grid = Grid(sizes=(600,), unit="chars", hops=(1,), samples=2, suite="test-suite")
    with_tokenizer = evaluate(CountingBackend(), grid, tmp_path / "a", model_label="a")
    without = evaluate(CountingBackend(tokenizer=False), grid, tmp_path / "b", model_label="b")
    assert [row["spec"] for row in with_tokenizer] == [row["spec"] for row in without]
    assert [row["target"] for row in with_tokenizer] == [row["target"] for row in without]
    assert {row["suite"] for row in with_tokenizer} == {"test-suite"}


def test_a_batch_size_below_one_is_a_project_error_from_python_too(tmp_path):
    with pytest.raises(HashHopError, match="batch-size must be at least 1"):
        evaluate(CountingBackend(), GRID, tmp_path / "run", model_label="double", batch_size=0)
    assert not (tmp_path / "run").exists()
