"""The tokenization experiment: can a sequence model reading raw token ids solve HashHop, and
how much does the tokenizer decide it?

Every tokenizer (identifier, char, bpe) x architecture (transformer, gated linear attention)
arm gets the same model shape (so the same non-embedding parameters, up to GLA's small gate),
the same training data (the same prompts, step for step) and the same optimizer steps. The
char and BPE arms read 3-5x more tokens per prompt, so they get more compute than the
identifier arm, never less. Each arm takes the best of a small learning-rate grid (chosen on
validation samples, seed 0), then trains two more seeds at that rate. Every run is evaluated
on held-out test samples (evaluation seeds training never draws) for 1-hop, 2-hop chain of
thought and 2-hop skip, at the training length and 4x, 16x, 64x it: exact match, pooled over
seeds with a 95% Wilson interval, and the spread of the per-seed accuracies.

Each model also reports its state (bytes kept per sequence at inference: the KV cache for
attention, the fixed matrices for GLA) next to the information the prompt holds (pairs x
two hashes x bits per hash).

    python benchmarks/tokenization.py --out runs/tokenization --threads 1   # the grid in RESULTS.md (~80 min, 1 core)
    python benchmarks/tokenization.py --out /tmp/t --steps 50 --seeds 1 --lrs 3e-3 --samples 4

Training runs and evaluations are kept in --out: rerunning resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from hashhop.checkpoint import load_checkpoint
from hashhop.dataset import atomic_output
from hashhop.evaluate_model import eval_specs, exact_matches
from hashhop.fit import make_sample
from hashhop.score import wilson_interval
from hashhop.task import DEFAULT_ALPHABET
from hashhop.train import train
from hashhop.train_config import TrainConfig, load_config
from hashhop.training_data import context_text

TOKENIZERS = ("identifier", "char", "bpe")
ARCHS = ("transformer", "gla")
CELLS = ((1, False), (2, True), (2, False))
"""(hops, chain of thought): 1-hop, 2-hop CoT, 2-hop skip."""
MULTIPLES = (1, 4, 16, 64)
VALIDATION_SEED, TEST_SEED = 1000, 0
"""Evaluation seed domains: the learning rate is chosen on one, results come from the other."""
HASH_LEN = 16


@dataclass(frozen=True)
class Settings:
    steps: int
    batch_size: int
    chars: int
    one_hop_steps: int
    lrs: tuple[float, ...]
    seeds: int
    samples: int
    samples_64x: int


def run_config(settings: Settings, out: Path, tokenizer: str, arch: str, lr: float, seed: int) -> TrainConfig:
    """One training run of one arm: the shared shape and data, this arm's tokenizer and arch."""
    name = f"{tokenizer}-{arch}-lr{lr:g}-seed{seed}"
    return load_config(None, [
        f"out_dir='{out / 'runs' / name}'", f"tokenizer={{kind='{tokenizer}'}}", f"model.arch='{arch}'",
        "model.d_model=64", "model.n_layers=2", "model.n_heads=2", "model.conv_kernel=3",
        "model.positional='none'", f"task.chars={settings.chars}", "task.hops=[1,2]",
        "task.cot=[false,true]", f"task.one_hop_steps={settings.one_hop_steps}",
        f"task.hash_len={HASH_LEN}", f"steps={settings.steps}", f"batch_size={settings.batch_size}",
        f"lr={lr}", "weight_decay=0.0", "warmup_steps=10", f"seed={seed}",
        f"checkpoint_every={settings.steps}",
    ])


def trained(config: TrainConfig) -> dict:
    """Train (or find finished) one run; its wall time is kept next to its checkpoints."""
    run_dir = Path(config.out_dir)
    timing = run_dir / "train_seconds.json"
    if not timing.exists():
        seconds = train(config, progress=True).metrics["seconds"]
        with atomic_output(timing) as file:
            file.write(json.dumps({"seconds": seconds}).encode())
    return json.loads(timing.read_text())


def evaluate(config: TrainConfig, settings: Settings, eval_seed: int, multiples: tuple[int, ...]) -> dict:
    """Per cell "hops-cot-multiple": correct, total and tokens per prompt, cached in the run dir."""
    cache_path = Path(config.out_dir) / f"eval-{eval_seed}.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    missing = [(m, h, c) for m in multiples for h, c in CELLS if f"{h}-{c}-{m}" not in cache]
    if not missing:
        return cache  # a rerun loads no model
    loaded = load_checkpoint(Path(config.out_dir))
    for multiple, hops, cot in missing:
        n = settings.samples_64x if multiple == 64 else settings.samples
        key = f"{hops}-{cot}-{multiple}"
        samples = [make_sample(spec) for spec in eval_specs(settings.chars * multiple, hops, cot, n, eval_seed, HASH_LEN)]
        matches = exact_matches(loaded.model, loaded.tokenizer, samples)
        tokens = len(loaded.tokenizer.encode(context_text(samples[0])).ids)
        cache[key] = {"correct": sum(matches), "total": n, "tokens": tokens, "pairs": samples[0].n_lines}
        with atomic_output(cache_path) as file:
            file.write(json.dumps(cache, indent=1).encode())
    return cache


def info_bytes(pairs: int) -> float:
    """What a prompt of `pairs` lines holds: two random hashes per line."""
    return pairs * 2 * HASH_LEN * math.log2(len(DEFAULT_ALPHABET)) / 8


def run_arm(settings: Settings, out: Path, tokenizer: str, arch: str) -> dict:
    """Learning-rate grid on seed 0 (validation samples, training length), then more seeds."""
    grid = {}
    for lr in settings.lrs:
        config = run_config(settings, out, tokenizer, arch, lr, 0)
        trained(config)
        scores = evaluate(config, settings, VALIDATION_SEED, (1,))
        grid[lr] = sum(cell["correct"] for cell in scores.values()) / sum(cell["total"] for cell in scores.values())
    best = max(settings.lrs, key=lambda lr: (grid[lr], -lr))
    runs = []
    for seed in range(settings.seeds):
        config = run_config(settings, out, tokenizer, arch, best, seed)
        seconds = trained(config)["seconds"]
        runs.append({"seed": seed, "train_seconds": seconds, "cells": evaluate(config, settings, TEST_SEED, MULTIPLES)})
    model = load_checkpoint(Path(run_config(settings, out, tokenizer, arch, best, 0).out_dir)).model
    embedding = sum(p.numel() for p in model.embedding.parameters())
    return {
        "tokenizer": tokenizer, "arch": arch, "lr_grid": grid, "lr": best, "runs": runs,
        "non_embedding_params": sum(p.numel() for p in model.parameters()) - embedding,
        "embedding_params": embedding,
        "state_bytes": {str(m): model.state_bytes(runs[0]["cells"][f"1-False-{m}"]["tokens"]) for m in MULTIPLES},
    }


def pooled(arm: dict, key: str) -> tuple[float, float, float, float, float]:
    """Accuracy pooled over seeds, its Wilson interval, and the lowest and highest seed."""
    cells = [run["cells"][key] for run in arm["runs"]]
    correct, total = sum(c["correct"] for c in cells), sum(c["total"] for c in cells)
    low, high = wilson_interval(correct, total)
    per_seed = [c["correct"] / c["total"] for c in cells]
    return correct / total, low, high, min(per_seed), max(per_seed)


def table(arms: list[dict]) -> str:
    """Markdown: one row per arm and cell, one column per context multiple."""
    lines = [
        "| tokenizer | arch | lr | task | " + " | ".join(f"{m}x" for m in MULTIPLES) + " |",
        "|---|---|---|---|" + "---|" * len(MULTIPLES),
    ]
    names = {(1, False): "1-hop", (2, True): "2-hop CoT", (2, False): "2-hop skip"}
    for arm in arms:
        for hops, cot in CELLS:
            values = []
            for multiple in MULTIPLES:
                accuracy, low, high, _, _ = pooled(arm, f"{hops}-{cot}-{multiple}")
                values.append(f"{accuracy:.0%} [{low:.0%}, {high:.0%}]")
            lines.append(f"| {arm['tokenizer']} | {arm['arch']} | {arm['lr']:g} | {names[hops, cot]} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def state_table(arms: list[dict]) -> str:
    """Markdown: tokens per prompt, state bytes, and the prompt's information, per multiple."""
    first = arms[0]["runs"][0]["cells"]
    lines = [
        "| tokenizer | arch | non-emb. params | emb. params | train s/run | " + " | ".join(f"{m}x tokens / state KB" for m in MULTIPLES) + " |",
        "|---|---|---|---|---|" + "---|" * len(MULTIPLES),
        "| (prompt) | information | | | | " + " | ".join(
            f"{first[f'1-False-{m}']['pairs']} pairs / {info_bytes(first[f'1-False-{m}']['pairs']) / 1e3:.1f} KB" for m in MULTIPLES
        ) + " |",
    ]
    for arm in arms:
        seconds = sum(run["train_seconds"] for run in arm["runs"]) / len(arm["runs"])
        cells = arm["runs"][0]["cells"]
        sizes = " | ".join(f"{cells[f'1-False-{m}']['tokens']} / {arm['state_bytes'][str(m)] / 1e3:.1f}" for m in MULTIPLES)
        lines.append(
            f"| {arm['tokenizer']} | {arm['arch']} | {arm['non_embedding_params']:,} | {arm['embedding_params']:,} | {seconds:.0f} | {sizes} |"
        )
    return "\n".join(lines)


def plot(arms: list[dict], path: Path) -> None:
    """Accuracy against context multiple, one panel per task, one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(CELLS), figsize=(5 * len(CELLS), 4), sharey=True)
    titles = {(1, False): "1-hop", (2, True): "2-hop, chain of thought", (2, False): "2-hop, skip"}
    for axis, (hops, cot) in zip(axes, CELLS):
        for arm in arms:
            stats = [pooled(arm, f"{hops}-{cot}-{m}") for m in MULTIPLES]
            accuracy = [s[0] for s in stats]
            axis.plot(MULTIPLES, accuracy, marker="o", label=f"{arm['tokenizer']} {arm['arch']}",
                      linestyle="-" if arm["arch"] == "transformer" else "--")
            axis.fill_between(MULTIPLES, [s[1] for s in stats], [s[2] for s in stats], alpha=0.15)
        pairs = [arms[0]["runs"][0]["cells"][f"{hops}-{cot}-{m}"]["pairs"] for m in MULTIPLES]
        axis.set_xscale("log", base=2)
        axis.set_xticks(MULTIPLES, [f"{m}x\n{p} lines" for m, p in zip(MULTIPLES, pairs)])
        axis.set_title(titles[hops, cot])
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("exact match (pooled over seeds, 95% CI)")
    axes[-1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/tokenization"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--chars", type=int, default=240, help="training prompt size in characters")
    parser.add_argument("--one-hop-steps", type=int, default=None, help="default: 40%% of --steps")
    parser.add_argument("--lrs", default="1e-3,3e-3,1e-2", help="learning-rate grid, comma-separated")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=64, help="test samples per cell and seed")
    parser.add_argument("--samples-64x", type=int, default=16, help="test samples per cell and seed at 64x")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--arms", default=",".join(f"{t}-{a}" for t in TOKENIZERS for a in ARCHS))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings(
        steps=args.steps, batch_size=args.batch_size, chars=args.chars,
        one_hop_steps=args.one_hop_steps if args.one_hop_steps is not None else args.steps * 2 // 5,
        lrs=tuple(float(lr) for lr in args.lrs.split(",")), seeds=args.seeds,
        samples=args.samples, samples_64x=args.samples_64x,
    )
    started = time.perf_counter()
    arms = []
    for arm in args.arms.split(","):
        tokenizer, arch = arm.split("-")
        print(f"== {tokenizer} {arch}", file=sys.stderr, flush=True)
        arms.append(run_arm(settings, args.out, tokenizer, arch))
    with atomic_output(args.out / "results.json") as file:
        file.write(json.dumps({"settings": settings.__dict__, "arms": arms}, indent=1).encode())
    plot(arms, args.out / "accuracy.png")
    print(table(arms))
    print()
    print(state_table(arms))
    print(f"\n{time.perf_counter() - started:.0f} s; torch threads {torch.get_num_threads()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
