"""Checkpoints: safetensors weights, a JSON config (model, tokenizer, training), trainer state.

A run directory holds `checkpoint-STEP/` folders and a `latest` file naming the newest
complete one. A checkpoint is written under a temporary name and renamed, and `latest`
is replaced atomically after it, so a run killed at any moment resumes from a whole
checkpoint; an error or termination signal mid-write removes the temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from hashhop.dataset import atomic_output
from hashhop.errors import HashHopError
from hashhop.interrupts import signals_raise_exit
from hashhop.models import LanguageModel, ModelConfig, build_model
from hashhop.tokenize import Tokenizer, tokenizer_from_spec

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TRAINER_FILE = "trainer_state.pt"
LATEST_FILE = "latest"
KEEP_CHECKPOINTS = 2


@dataclass
class Loaded:
    model: LanguageModel
    tokenizer: Tokenizer
    config: dict
    directory: Path


def save_checkpoint(
    run_dir: Path, step: int, model: LanguageModel, tokenizer: Tokenizer, model_config: ModelConfig,
    train_config: dict, trainer_state: dict,
) -> Path:
    """Write checkpoint-STEP atomically, point `latest` at it, drop the oldest beyond KEEP_CHECKPOINTS."""
    run_dir = Path(run_dir)
    final = run_dir / f"checkpoint-{step:07d}"
    staging = run_dir / f".{final.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    with signals_raise_exit():
        staging.mkdir(parents=True)
        try:
            weights = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
            save_file(weights, staging / WEIGHTS_FILE)
            config = {"model": model_config.to_dict(), "tokenizer": tokenizer.spec(), "train": train_config, "step": step}
            (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2))
            torch.save(trainer_state, staging / TRAINER_FILE)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    shutil.rmtree(final, ignore_errors=True)
    os.replace(staging, final)
    with atomic_output(run_dir / LATEST_FILE) as file:
        file.write(final.name.encode())
    for old in sorted(run_dir.glob("checkpoint-*"))[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old)
    return final


def latest_checkpoint(path: Path) -> Path | None:
    """The newest complete checkpoint of a run directory, or `path` itself if it is one."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return path
    pointer = path / LATEST_FILE
    return path / pointer.read_text().strip() if pointer.is_file() else None


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> Loaded:
    """Model (eval mode), tokenizer and config from a checkpoint or a run directory."""
    directory = latest_checkpoint(path)
    if directory is None or not (directory / WEIGHTS_FILE).is_file():
        raise HashHopError(f"no checkpoint at {path}: expected {CONFIG_FILE} and {WEIGHTS_FILE}, or a run directory")
    try:
        config = json.loads((directory / CONFIG_FILE).read_text())
        model = build_model(ModelConfig.from_dict(config["model"]))
        tokenizer = tokenizer_from_spec(config["tokenizer"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise HashHopError(f"{directory / CONFIG_FILE} is not a hashhop checkpoint config: {error}") from None
    model.load_state_dict(load_weights(directory, device))
    return Loaded(model.to(device).eval(), tokenizer, config, directory)


def load_weights(directory: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    return load_file(Path(directory) / WEIGHTS_FILE, device=str(device))


def load_trainer_state(directory: Path) -> dict:
    """Optimizer state and step (our own file, so unpickling it is safe)."""
    return torch.load(Path(directory) / TRAINER_FILE, weights_only=False)
