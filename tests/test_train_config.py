"""`hashhop train` checks its whole config, naming the field, before torch is imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("pydantic")

from hashhop.errors import HashHopError
from hashhop.train_config import load_config

# `hashhop train ARGS...`, then whether torch was imported (on stdout, whatever the exit).
TRAIN_THEN_SAY_IF_TORCH_LOADED = """
import sys
from hashhop.cli import main

sys.argv = ["hashhop", "train", *sys.argv[1:]]
try:
    main()
finally:
    print("torch" in sys.modules)
"""


@pytest.mark.parametrize(
    "override, field",
    [
        ("lr=-1", "config: lr:"),
        ("batch_size=0", "config: batch_size:"),
        ("steps=-1", "config: steps:"),
        ("checkpoint_every=0", "config: checkpoint_every:"),
        ("device='gpu'", "config: device:"),
        ("model.n_layers=0", "n_layers must be >= 1"),
        ("model.arch='mamba'", "unknown arch 'mamba'"),
        ("task.hops=[0]", "config: task: hops must be at least 1"),
        ("task.chars=10", "config: task:"),
        ("tokenizer={kind='chars'}", "config: tokenizer: unknown tokenizer 'chars'"),
    ],
)
def test_a_bad_field_is_one_line_naming_it_exit_2_before_torch_loads(tmp_path, override, field):
    command = [sys.executable, "-c", TRAIN_THEN_SAY_IF_TORCH_LOADED,
               "--set", f"out_dir='{tmp_path / 'run'}'", "--set", override]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 2, result.stderr
    assert field in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout.strip() == "False"
    assert list(tmp_path.iterdir()) == []


def test_the_shipped_configs_pass_the_checks():
    for path in ("configs/identifier.toml", "configs/memory.toml"):
        assert load_config(path, []).steps >= 1


def test_an_override_below_a_plain_value_is_an_error_not_a_crash():
    with pytest.raises(HashHopError, match="lr is a value, not a table"):
        load_config(None, ["lr=1", "lr.x=2"])
