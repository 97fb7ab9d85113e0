"""`hashhop eval` end to end on a real model, SmolLM2-135M-Instruct from its PyPI wheel:
in-process through transformers, and behind llama.cpp's OpenAI-compatible server that is
killed mid-run and restarted. SmolLM2 fails HashHop; what is tested is that every answer is
asked, graded, cached and reported, and that nothing is lost or asked twice.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from llama_server import free_port, llama_server

from hashhop.backends.bundled import resolve_model
from hashhop.cache import AnswerCache
from hashhop.errors import HashHopError
from hashhop.harness import Grid, evaluate

pytest.importorskip("torch")
pytest.importorskip("llama_cpp.server")
from hashhop.backends.openai import OpenAIBackend  # after the skips: needs the optional httpx

SMOLLM2 = resolve_model("smollm2-135m")
GRID = Grid(sizes=(150,), hops=(1, 2), cot_modes=(False, True), samples=1, queries=1)


def hashhop(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hashhop", *args], capture_output=True, text=True, check=False)


def results_without_timing(run_dir) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    return [{key: value for key, value in row.items() if key != "latency_s"} for row in rows]


def cached_answers(run_dir) -> int:
    with AnswerCache(run_dir) as cache:
        return cache._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]


@pytest.mark.slow
def test_eval_then_report_on_a_local_transformers_model(tmp_path):
    run = tmp_path / "smollm2"
    args = ["eval", "--backend", "hf", "--model", "smollm2-135m", "--tokens", "150",
            "--hops", "1,2", "--both", "--samples", "1", "--out", str(run)]
    first = hashhop(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    rows = results_without_timing(run)
    assert len(rows) == 4 and cached_answers(run) == 4
    assert all(row["sizing"] == "model tokenizer" and row["prompt_tokens"] > 150 for row in rows)
    again = hashhop(*args)
    assert again.returncode == 0 and cached_answers(run) == 4
    assert results_without_timing(run) == rows

    report = hashhop("report", str(run))
    assert report.returncode == 0, report.stderr[-2000:]
    assert "smollm2-135m" in report.stdout
    for name in ("heatmap.png", "accuracy.png", "report.html"):
        assert (run / name).stat().st_size > 1000


@pytest.mark.slow
def test_a_server_killed_mid_run_loses_nothing_and_resumes(tmp_path):
    port = free_port()

    def backend(url: str) -> OpenAIBackend:
        return OpenAIBackend(base_url=url, model="smollm2", endpoint="completions",
                             max_retries=1, backoff_s=0.05, timeout_s=60)

    with llama_server(SMOLLM2, "smollm2", port=port) as server:
        evaluate(backend(server.url), GRID, tmp_path / "undisturbed", "smollm2", batch_size=1)

    class KillsServerAfterTwoBatches(OpenAIBackend):
        batches = 0

        def complete(self, prompts, max_new_tokens):
            self.batches += 1
            if self.batches == 3:
                server.process.kill()
                server.process.wait()
            return super().complete(prompts, max_new_tokens)

    disturbed = tmp_path / "disturbed"
    with llama_server(SMOLLM2, "smollm2", port=port) as server:
        killer = KillsServerAfterTwoBatches(base_url=server.url, model="smollm2", endpoint="completions",
                                            max_retries=1, backoff_s=0.05, timeout_s=60)
        with pytest.raises(HashHopError):
            evaluate(killer, GRID, disturbed, "smollm2", batch_size=1)
    assert cached_answers(disturbed) == 2 and not (disturbed / "results.jsonl").exists()

    with llama_server(SMOLLM2, "smollm2", port=port) as server:
        evaluate(backend(server.url), GRID, disturbed, "smollm2", batch_size=1)
    assert cached_answers(disturbed) == 4
    assert results_without_timing(disturbed) == results_without_timing(tmp_path / "undisturbed")
