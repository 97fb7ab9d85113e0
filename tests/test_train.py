"""Training: the learning path works, checkpoints round-trip, resumes are exact, DDP stays in sync."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from llama_server import free_port

from hashhop.checkpoint import WEIGHTS_FILE, latest_checkpoint, load_checkpoint
from hashhop.errors import HashHopError
from hashhop.evaluate_model import accuracy, answers, eval_specs, exact_matches
from hashhop.fit import make_sample
from hashhop.generation import greedy_continue
from hashhop.train import sample_specs, train
from hashhop.train_config import load_config
from hashhop.training_data import answer_text, context_text

TINY = [
    "task.chars=300", "task.hops=[1]", "batch_size=16", "model.d_model=64", "model.n_layers=1",
    "model.n_heads=2", "model.conv_kernel=3", "lr=3e-3", "warmup_steps=10", "weight_decay=0.0",
]


def tiny_config(tmp_path: Path, *extra: str):
    return load_config(None, [f"out_dir='{tmp_path}'", *TINY, *extra])


def weights_digest(run_dir: Path) -> str:
    return hashlib.sha256((latest_checkpoint(run_dir) / WEIGHTS_FILE).read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_tiny_identifier_transformer_learns_one_hop_lookup(tmp_path):
    config = tiny_config(tmp_path, "steps=1000", "checkpoint_every=1000")
    train(config, progress=False)
    loaded = load_checkpoint(tmp_path)
    result = accuracy(loaded, chars=300, hops=1, cot=False, n_samples=64, seed=0)
    assert result >= 0.9, f"1-hop exact match {result:.0%} after 1000 steps"
    # The teacher-forced score is the greedy decoder's, sample for sample.
    samples = [make_sample(spec) for spec in eval_specs(300, 1, False, 64, 0)]
    greedy = answers(loaded, chars=300, hops=1, cot=False, n_samples=64, seed=0)
    right = [text == answer_text(sample).rstrip("\n") for text, sample in zip(greedy, samples)]
    assert right == exact_matches(loaded.model, loaded.tokenizer, samples)
    # It reads the answer from the prompt: rewrite the asked line's value, the answer follows.
    edited = []
    for sample in samples:
        value = answer_text(sample).rstrip("'\n")
        edited.append(context_text(sample).replace(value, value[::-1]))
    contexts = [loaded.tokenizer.encode(text) for text in edited]
    followed = greedy_continue(loaded.model, loaded.tokenizer, contexts, max_new_tokens=3)
    reversed_values = [answer_text(sample).rstrip("'\n")[::-1] + "'" for sample in samples]
    assert sum(a == b for a, b in zip(followed, reversed_values)) >= 0.9 * len(samples)


def test_the_curriculum_asks_one_hop_first_then_every_hop_count(tmp_path):
    config = tiny_config(tmp_path, "task.hops=[1,2]", "task.cot=[false,true]", "task.one_hop_steps=3")
    assert {spec.hops for step in range(3) for spec in sample_specs(config, step, 0)} == {1}
    later = {(spec.hops, spec.cot) for spec in sample_specs(config, 3, 0)}
    assert later == {(1, False), (1, True), (2, False), (2, True)}


def test_evaluation_seeds_never_occur_in_training(tmp_path):
    config = tiny_config(tmp_path, "batch_size=64")
    train_seeds = {spec.seed for step in range(200) for rank in (0, 1) for spec in sample_specs(config, step, rank)}
    eval_seeds = {spec.seed for seed in range(4) for spec in eval_specs(300, 1, False, 2000, seed)}
    assert len(train_seeds) == 2 * 200 * 64 and len(eval_seeds) == 4 * 2000
    assert not train_seeds & eval_seeds


def test_a_checkpoint_loaded_in_a_new_process_gives_identical_answers(tmp_path):
    train(tiny_config(tmp_path, "steps=20", "checkpoint_every=20"), progress=False)
    code = (
        "import sys; from hashhop.checkpoint import load_checkpoint; from hashhop.evaluate_model import answers\n"
        f"print(repr(answers(load_checkpoint({str(tmp_path)!r}), chars=300, hops=1, cot=False, n_samples=8, seed=5)))"
    )
    here = answers_of(tmp_path)
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert there.strip() == repr(here)


def answers_of(run_dir: Path) -> list[str]:
    return answers(load_checkpoint(run_dir), chars=300, hops=1, cot=False, n_samples=8, seed=5)


def test_a_killed_run_resumes_to_the_same_weights_as_an_uninterrupted_one(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    train(tiny_config(straight, "steps=20", "checkpoint_every=5"), progress=False)

    killed = tmp_path / "killed"
    import hashhop.train as training

    real_save = training.save_checkpoint

    def save_then_die(run_dir, step, *args, **kwargs):
        path = real_save(run_dir, step, *args, **kwargs)
        if step == 10:
            raise KeyboardInterrupt  # killed right after the step-10 checkpoint
        return path

    monkeypatch.setattr(training, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(killed, "steps=20", "checkpoint_every=5"), progress=False)
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    train(tiny_config(killed, "steps=20", "checkpoint_every=5"), progress=False)
    assert weights_digest(killed) == weights_digest(straight)


def test_a_termination_signal_while_saving_leaves_no_temporary_checkpoint(tmp_path, monkeypatch):
    def terminated(*args, **kwargs):
        raise SystemExit(143)  # what SIGTERM raises while a checkpoint is written

    monkeypatch.setattr("hashhop.checkpoint.torch.save", terminated)
    with pytest.raises(SystemExit):
        train(tiny_config(tmp_path, "steps=1", "checkpoint_every=1"), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_resuming_with_another_model_is_a_clear_error(tmp_path):
    train(tiny_config(tmp_path, "steps=2", "checkpoint_every=2"), progress=False)
    with pytest.raises(HashHopError, match="another model .*d_model"):
        train(tiny_config(tmp_path, "steps=4", "model.d_model=32"), progress=False)


def test_init_from_starts_a_new_run_from_another_runs_weights(tmp_path):
    first = train(tiny_config(tmp_path / "first", "steps=2", "checkpoint_every=2"), progress=False).model
    # lr near zero: the second stage's weights are the first's, a fresh model's are not
    second = train(tiny_config(tmp_path / "second", "steps=1", "lr=1e-12", f"init_from='{tmp_path / 'first'}'"),
                   progress=False).model
    fresh = train(tiny_config(tmp_path / "fresh", "steps=1", "lr=1e-12"), progress=False).model
    for name, weight in first.state_dict().items():
        assert torch.allclose(second.state_dict()[name], weight, atol=1e-6), name
    assert not all(torch.equal(fresh.state_dict()[name], weight) for name, weight in first.state_dict().items())


def test_init_from_a_model_of_another_shape_is_a_clear_error(tmp_path):
    train(tiny_config(tmp_path / "first", "steps=2", "checkpoint_every=2"), progress=False)
    with pytest.raises(HashHopError, match="init_from: .* do not fit this model"):
        train(tiny_config(tmp_path / "second", "steps=1", "model.d_model=32", f"init_from='{tmp_path / 'first'}'"),
              progress=False)
    with pytest.raises(HashHopError, match="init_from: no checkpoint or run directory"):
        tiny_config(tmp_path / "third", f"init_from='{tmp_path / 'missing'}'")
    with pytest.raises(HashHopError, match="init_from: .* another tokenizer"):
        train(tiny_config(tmp_path / "fourth", "steps=1", "tokenizer={kind='char'}", f"init_from='{tmp_path / 'first'}'"),
              progress=False)


@pytest.mark.slow
def test_two_ddp_processes_on_cpu_keep_their_replicas_in_sync(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(
        "import hashlib, os, sys, torch\n"
        "from hashhop.train import train\n"
        "from hashhop.train_config import load_config\n"
        "config = load_config(None, sys.argv[1:])\n"
        "result = train(config, progress=False)\n"
        "digest = hashlib.sha256(b''.join(t.numpy().tobytes() for t in result.model.state_dict().values())).hexdigest()\n"
        "open(os.path.join(config.out_dir, f\"digest-{os.environ['RANK']}\"), 'w').write(digest)\n"
    )
    args = [f"out_dir='{tmp_path}'", *TINY, "steps=6", "checkpoint_every=6", "batch_size=4"]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()), str(script), *args]
    subprocess.run(command, check=True, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert (tmp_path / "digest-0").read_text() == (tmp_path / "digest-1").read_text()
