"""`hashhop eval`: cheap arguments are checked before any model loads, an unreachable server
fails at once with the URL the user gave, and neither leaves a run directory behind."""

from __future__ import annotations

import pytest
from conftest import run_cli_watching_torch
from llama_server import free_port


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hops", "0"], "hops must be at least 1"),
        (["--tokens", "1000..10"], "--tokens takes a list"),
        (["--samples", "0"], "samples must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--template", "no-such-template.txt"], "cannot read template"),
        (["--suite", "v1", "--tokens", "500"], "--suite v1 fixes the grid, so it cannot be combined with --tokens"),
        (["--suite", "v1", "--both", "--samples", "3"], "cannot be combined with --cot/--no-cot/--both, --samples"),
        (["--suite", "v0"], "unknown suite 'v0'; choose one of: v1"),
    ],
)
def test_a_bad_cheap_argument_fails_before_the_model_loads_and_writes_nothing(tmp_path, args, message):
    run = tmp_path / "run"
    result, torch_loaded = run_cli_watching_torch(
        "eval", "--backend", "hf", "--model", str(tmp_path / "model.gguf"), "--out", str(run), *args)
    assert message in one_line_error(result)
    assert not torch_loaded
    assert not run.exists()


def test_a_server_that_is_not_there_fails_at_once_naming_the_given_url_and_leaves_no_run(tmp_path):
    base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens on a port just freed
    run = tmp_path / "run"
    result, _ = run_cli_watching_torch(
        "eval", "--backend", "openai", "--model", "m", "--base-url", base_url, "--out", str(run),
        "--tokens", "200", "--hops", "1", "--samples", "1")
    message = one_line_error(result)
    assert f"cannot connect to {base_url}:" in message
    assert "attempts" not in message and "tokenize" not in message  # no retries, no internal route
    assert not run.exists()


def test_a_run_directory_in_a_missing_directory_is_refused_before_the_model_loads(tmp_path):
    result, torch_loaded = run_cli_watching_torch(
        "eval", "--backend", "hf", "--model", "x.gguf", "--out", str(tmp_path / "missing" / "run"))
    assert "does not exist" in one_line_error(result)
    assert not torch_loaded
