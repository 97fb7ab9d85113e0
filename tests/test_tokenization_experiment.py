"""The tokenization experiment's script runs end to end on a tiny budget and resumes."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

import tokenization

TINY = ["--steps", "3", "--seeds", "2", "--lrs", "3e-3,1e-2", "--samples", "2", "--samples-64x", "1",
        "--chars", "120", "--arms", "identifier-transformer,char-gla", "--threads", "1"]


def test_tiny_grid_writes_table_state_sizes_and_figure(tmp_path, capsys):
    assert tokenization.main(["--out", str(tmp_path), *TINY]) == 0
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    arms = {(arm["tokenizer"], arm["arch"]): arm for arm in results["arms"]}
    assert set(arms) == {("identifier", "transformer"), ("char", "gla")}
    for arm in arms.values():
        assert set(arm["lr_grid"]) == {"0.003", "0.01"}  # JSON keys are strings
        assert len(arm["runs"]) == 2
        for run in arm["runs"]:
            assert len(run["cells"]) == len(tokenization.CELLS) * len(tokenization.MULTIPLES)
    # Attention keeps a KV cache that grows with the prompt; GLA's state does not grow.
    transformer, gla = arms["identifier", "transformer"]["state_bytes"], arms["char", "gla"]["state_bytes"]
    assert transformer["64"] > transformer["1"] and gla["64"] == gla["1"]
    assert "2-hop skip" in printed and "information" in printed
    assert (tmp_path / "accuracy.png").stat().st_size > 0
    # A rerun trains nothing again: every run directory already holds its result.
    before = sorted(p.stat().st_mtime_ns for p in tmp_path.glob("runs/*/train_seconds.json"))
    assert tokenization.main(["--out", str(tmp_path), *TINY]) == 0
    assert sorted(p.stat().st_mtime_ns for p in tmp_path.glob("runs/*/train_seconds.json")) == before
