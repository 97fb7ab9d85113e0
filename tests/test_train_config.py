"""`hashhop train` checks its whole config, naming the field, before torch is imported."""

from __future__ import annotations

import pytest
from conftest import run_cli_watching_torch

pytest.importorskip("pydantic")

from hashhop.errors import HashHopError
from hashhop.train_config import load_config


@pytest.mark.parametrize(
    "override, field",
    [
        ("lr=-1", "config: lr:"),
        ("batch_size=0", "config: batch_size:"),
        ("steps=-1", "config: steps:"),
        ("checkpoint_every=0", "config: checkpoint_every:"),
        ("device='gpu'", "config: device:"),
        ("model.n_layers=0", "config: model: n_layers must be >= 1"),
        ("model.arch='mamba'", "config: model: unknown arch 'mamba'"),
        ("task.hops=[0]", "config: task: hops must be at least 1"),
        ("task.chars=10", "config: task:"),
        ("tokenizer={kind='chars'}", "config: tokenizer: unknown tokenizer 'chars'"),
    ],
)
def test_a_bad_field_is_one_line_naming_it_exit_2_before_torch_loads(tmp_path, override, field):
    result, torch_loaded = run_cli_watching_torch("train", "--set", f"out_dir='{tmp_path / 'run'}'", "--set", override)
    assert result.returncode == 2, result.stderr
    assert field in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not torch_loaded
    assert list(tmp_path.iterdir()) == []


def test_the_shipped_configs_pass_the_checks(tmp_path):
    for path in ("configs/identifier.toml", "configs/memory.toml"):
        assert load_config(path, []).steps >= 1
    # the second stage starts from the first's run, which must exist
    with pytest.raises(HashHopError, match="init_from: no checkpoint or run directory at runs/train/memory-skip"):
        load_config("configs/memory_cot.toml", ["init_from='runs/train/memory-skip-missing'"])
    assert load_config("configs/memory_cot.toml", [f"init_from='{tmp_path}'"]).init_from == str(tmp_path)


def test_an_override_below_a_plain_value_is_an_error_not_a_crash():
    with pytest.raises(HashHopError, match="lr is a value, not a table"):
        load_config(None, ["lr=1", "lr.x=2"])
