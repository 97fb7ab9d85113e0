"""Train a small model on HashHop, with fresh hashes every batch.

Every batch is generated on the fly from seeds derived from (run seed, step, rank, row),
so data never repeats, a resumed run sees exactly the batches it would have seen, and
evaluation seeds (another derivation) never occur in training. Loss is on the answer tokens
only. AdamW with linear warmup and cosine decay, gradient clipping; CPU by default, CUDA
with bf16 autocast when present; several processes through `torchrun` (PyTorch DDP).
The config (hashhop/train_config.py) is checked before this module, and torch, is imported.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from hashhop.checkpoint import (
    CONFIG_FILE,
    latest_checkpoint,
    load_checkpoint,
    load_trainer_state,
    load_weights,
    save_checkpoint,
)
from hashhop.errors import HashHopError
from hashhop.fit import make_sample
from hashhop.models import ModelConfig, build_model
from hashhop.permutation import derive_key
from hashhop.task import TaskSpec
from hashhop.tokenize import make_tokenizer
from hashhop.train_config import TrainConfig
from hashhop.training_data import TRAIN_SEEDS, batch_loss, collate, encode_example


def sample_specs(config: TrainConfig, step: int, rank: int) -> list[TaskSpec]:
    """The specs of one rank's batch at one step: hops and modes cycle over the rows."""
    hops_asked = [1] if step < config.task.one_hop_steps else config.task.hops
    settings = [(h, c) for h in hops_asked for c in config.task.cot]
    base = derive_key(config.seed, TRAIN_SEEDS)
    specs = []
    for row in range(config.batch_size):
        hops, cot = settings[row % len(settings)]
        seed = derive_key(base ^ derive_key(step, rank), row)
        specs.append(config.task.spec(hops, cot, seed))
    return specs


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio * lr."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise HashHopError("device cuda asked for, but no CUDA device is available")
    return torch.device(name)


def _check_same_run(checkpoint: Path, model_config: ModelConfig, tokenizer_spec: dict) -> None:
    """Resuming continues the same run: a changed model or tokenizer is an error, not a mix."""
    saved = json.loads((checkpoint / CONFIG_FILE).read_text())
    saved["model"] = ModelConfig.from_dict(saved["model"]).to_dict()  # fields added since get defaults
    for part, now in (("model", model_config.to_dict()), ("tokenizer", tokenizer_spec)):
        if saved[part] != now:
            changed = sorted(key for key in saved[part].keys() | now.keys() if saved[part].get(key) != now.get(key))
            raise HashHopError(
                f"{checkpoint.parent} holds a run with another {part} ({', '.join(changed)} differ): "
                "resume it with its own config, or train into a new out_dir"
            )


def _start_from(source: str, model: torch.nn.Module, tokenizer_spec: dict, device: torch.device) -> None:
    """Load `init_from`'s weights into a new run's model, or say in one line why they do not fit."""
    try:
        start = load_checkpoint(Path(source), device)
    except HashHopError as error:
        raise HashHopError(f"init_from: {error}") from None
    if start.config["tokenizer"] != tokenizer_spec:
        raise HashHopError(f"init_from: {start.directory} was trained with another tokenizer")
    try:
        model.load_state_dict(start.model.state_dict())
    except RuntimeError:
        raise HashHopError(f"init_from: {start.directory}'s weights do not fit this model (another arch or shape)") from None


@dataclass
class TrainResult:
    metrics: dict[str, float]
    """Last batch's loss and exact match, and the seconds this call trained."""
    model: torch.nn.Module


def train(config: TrainConfig, progress: bool = True) -> TrainResult:
    """Train (resuming from the run directory's latest checkpoint if any)."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = _device(config.device)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    if device.type == "cuda" and distributed:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.manual_seed(config.seed)
    tokenizer = make_tokenizer(**config.tokenizer)
    model_config = ModelConfig(n_fixed=tokenizer.n_fixed, feature_dim=tokenizer.feature_dim, **config.model.model_dump())
    model = build_model(model_config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.95), weight_decay=config.weight_decay)
    start_step = 0
    run_dir = Path(config.out_dir)
    resume_from = latest_checkpoint(run_dir) if run_dir.exists() else None
    if resume_from is not None:
        _check_same_run(resume_from, model_config, tokenizer.spec())
        state = load_trainer_state(resume_from)
        model.load_state_dict(load_weights(resume_from, device))
        optimizer.load_state_dict(state["optimizer"])
        start_step = state["step"]
    elif config.init_from is not None:
        _start_from(config.init_from, model, tokenizer.spec(), device)
    trained = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    metrics = {"loss": float("nan"), "exact": float("nan"), "seconds": 0.0}
    started = time.perf_counter()
    bar = tqdm(range(start_step, config.steps), initial=start_step, total=config.steps,
               desc="train", disable=not progress or rank != 0)
    for step in bar:
        examples = [encode_example(tokenizer, make_sample(spec)) for spec in sample_specs(config, step, rank)]
        batch = collate(tokenizer, examples).to(device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        with autocast:
            loss, row_exact = batch_loss(trained, batch)
        exact = row_exact.float().mean().item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        metrics.update(loss=loss.item(), exact=exact)
        bar.set_postfix(loss=f"{metrics['loss']:.3f}", exact=f"{exact:.0%}")
        finished = step + 1
        if rank == 0 and (finished % config.checkpoint_every == 0 or finished == config.steps):
            state = {"optimizer": optimizer.state_dict(), "step": finished}
            save_checkpoint(run_dir, finished, model, tokenizer, model_config, config.model_dump(), state)
    metrics["seconds"] = time.perf_counter() - started
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return TrainResult(metrics, model)
