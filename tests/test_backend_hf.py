"""The transformers backend on a real model: SmolLM2-135M-Instruct, from its GGUF file."""

import json
from pathlib import Path

import pytest

from hashhop.backends import make_backend
from hashhop.backends.bundled import resolve_model
from hashhop.errors import HashHopError

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")
SMOLLM2 = Path(resolve_model("smollm2-135m"))

SMOLLM2_CONTEXT_WINDOW = 8192
MAX_NEW_TOKENS = 16
PROMPTS = [
    "xKqv = Tzmb\nTzmb = 'Rwpa'\nWhat does xKqv lead to?",
    "What is 2+2?",
]


@pytest.fixture(scope="module")
def backend():
    return make_backend("hf", model=SMOLLM2, device="cpu")


@pytest.fixture(scope="module")
def batch_answers(backend):
    return backend.complete(PROMPTS, MAX_NEW_TOKENS)


@pytest.mark.slow
def test_batch_answers_are_greedy(backend, batch_answers):
    again = backend.complete(PROMPTS, MAX_NEW_TOKENS)
    assert [answer.text for answer in again] == [answer.text for answer in batch_answers]
    assert all(answer.text.strip() for answer in batch_answers)


@pytest.mark.slow
def test_left_padding_leaves_each_answer_as_if_asked_alone(backend, batch_answers):
    alone = [backend.complete([prompt], MAX_NEW_TOKENS)[0] for prompt in PROMPTS]
    assert [answer.text for answer in alone] == [answer.text for answer in batch_answers]
    assert [answer.prompt_tokens for answer in alone] == [
        answer.prompt_tokens for answer in batch_answers
    ]


@pytest.mark.slow
def test_answers_report_tokens_and_latency(backend, batch_answers):
    long_prompt, short_prompt = batch_answers
    assert long_prompt.prompt_tokens > short_prompt.prompt_tokens
    template_overhead = long_prompt.prompt_tokens - backend.count_tokens(PROMPTS[0])
    assert template_overhead == short_prompt.prompt_tokens - backend.count_tokens(PROMPTS[1])
    assert all(0 < answer.completion_tokens <= MAX_NEW_TOKENS for answer in batch_answers)
    assert all(answer.latency_s > 0 for answer in batch_answers)


@pytest.mark.slow
def test_generation_stops_at_the_end_of_the_turn(batch_answers):
    short_answer = batch_answers[1]
    assert "4" in short_answer.text
    assert "<|im_end|>" not in short_answer.text
    assert short_answer.completion_tokens < MAX_NEW_TOKENS


@pytest.mark.slow
def test_count_tokens_uses_the_model_tokenizer(backend):
    assert backend.count_tokens("The capital of France is") == 5


@pytest.mark.slow
def test_context_window_comes_from_the_model_config(backend):
    assert backend.context_window == SMOLLM2_CONTEXT_WINDOW


@pytest.mark.slow
def test_a_prompt_beyond_the_context_window_is_refused(backend):
    with pytest.raises(HashHopError, match="context window of 8192"):
        backend.complete(["word " * SMOLLM2_CONTEXT_WINDOW], MAX_NEW_TOKENS)


@pytest.mark.slow
def test_settings_name_the_model_file_and_how_it_runs(backend):
    settings = backend.settings()
    assert settings["model"] == SMOLLM2.name  # a name, not this machine's path
    assert settings["model_digest"].startswith("sha256:")
    assert settings["chat_template"] is True
    assert (settings["device"], settings["dtype"]) == ("cpu", "float32")
    json.dumps(settings)


def test_a_missing_model_file_is_refused(tmp_path):
    with pytest.raises(HashHopError, match="no model at"):
        make_backend("hf", model=tmp_path / "missing.gguf")
