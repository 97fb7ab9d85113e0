"""Seconds per prompt: one GGUF file through transformers (hf) and through llama.cpp, same prompts.

transformers de-quantizes the GGUF to fp32; llama.cpp runs its quantized weights. Each grid
cell (hash-list size x hops, skip answers) is evaluated by the harness for each backend, in
one run; a wrapper times what each backend spends inside `complete()` and records the
prompts, which must be the same for both (both size them with the GGUF's vocabulary). Both
get the same number of CPU threads (default: torch's default, every core).

    .venv/bin/python benchmarks/llamacpp_vs_hf.py [--model smollm2-135m] [--tokens 500,2000] [--samples 3] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
from harness_overhead import TimedBackend

from hashhop.backends import make_backend
from hashhop.harness import Grid, evaluate

BACKENDS = ("hf", "llamacpp")


class Recorder(TimedBackend):
    """A timed backend that also records the prompts it is asked and the CPU seconds it spends
    answering them: on a shared machine, wall time measures the other jobs too."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.prompts: list[str] = []
        self.cpu_seconds = 0.0

    def complete(self, prompts, max_new_tokens):
        self.prompts += prompts
        start = time.process_time()
        try:
            return super().complete(prompts, max_new_tokens)
        finally:
            self.cpu_seconds += time.process_time() - start


@dataclass
class Cell:
    """One backend's answers to one grid cell."""

    seconds_per_prompt: float
    cpu_seconds_per_prompt: float
    correct: int
    completions: list[str]
    new_tokens: float


def run_cell(backend: Recorder, grid: Grid, run_dir: Path) -> tuple[Cell, list[str]]:
    backend.seconds_in_complete, backend.cpu_seconds, backend.prompts = 0.0, 0.0, []
    rows = evaluate(backend, grid, run_dir, model_label=str(backend.settings()["backend"]))
    cell = Cell(
        seconds_per_prompt=backend.seconds_in_complete / len(rows),
        cpu_seconds_per_prompt=backend.cpu_seconds / len(rows),
        correct=sum(row["correct"] for row in rows),
        completions=[row["completion"] for row in rows],
        new_tokens=sum(row["completion_tokens"] for row in rows) / len(rows),
    )
    return cell, backend.prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", default="500,2000")
    parser.add_argument("--hops", default="1,2")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = {"hf": {"device": "cpu"}, "llamacpp": {"threads": args.threads}}
    load_seconds, backends = {}, {}
    for kind in BACKENDS:
        start = time.perf_counter()
        backends[kind] = Recorder(make_backend(kind, model=args.model, **settings[kind]))
        load_seconds[kind] = time.perf_counter() - start
    print(f"# {date.today()} · {platform.machine()} · {args.model} · skip answers, {args.samples} prompts a cell · "
          f"{args.threads} CPU thread(s) each · "
          f"load s: " + ", ".join(f"{kind} {seconds:.1f}" for kind, seconds in load_seconds.items()))
    print("| tokens | hops | hf s/prompt (CPU s) | llamacpp s/prompt (CPU s) | speed-up (CPU) "
          "| hf new tokens | llamacpp new tokens | hf correct | llamacpp correct | same answers |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    totals = {kind: [0.0, 0.0] for kind in BACKENDS}
    with tempfile.TemporaryDirectory() as scratch:
        for size in (int(part) for part in args.tokens.split(",")):
            for hops in (int(part) for part in args.hops.split(",")):
                grid = Grid(sizes=(size,), hops=(hops,), samples=args.samples)
                cells, prompts = {}, {}
                for kind in BACKENDS:
                    cells[kind], prompts[kind] = run_cell(backends[kind], grid, Path(scratch) / f"{kind}-{size}-{hops}")
                    totals[kind][0] += cells[kind].seconds_per_prompt * args.samples
                    totals[kind][1] += cells[kind].cpu_seconds_per_prompt * args.samples
                if prompts["hf"] != prompts["llamacpp"]:
                    raise SystemExit(f"the backends were asked different prompts at {size} tokens, {hops} hops")
                hf, llama = cells["hf"], cells["llamacpp"]
                same = sum(a == b for a, b in zip(hf.completions, llama.completions))
                print(f"| {size:,} | {hops} | {hf.seconds_per_prompt:.2f} ({hf.cpu_seconds_per_prompt:.2f}) "
                      f"| {llama.seconds_per_prompt:.2f} ({llama.cpu_seconds_per_prompt:.2f}) "
                      f"| {hf.seconds_per_prompt / llama.seconds_per_prompt:.1f}x "
                      f"({hf.cpu_seconds_per_prompt / llama.cpu_seconds_per_prompt:.1f}x) "
                      f"| {hf.new_tokens:.0f} | {llama.new_tokens:.0f} "
                      f"| {hf.correct}/{args.samples} | {llama.correct}/{args.samples} | {same}/{args.samples} |")
    (hf_wall, hf_cpu), (llama_wall, llama_cpu) = totals["hf"], totals["llamacpp"]
    print(f"seconds in the model, wall (CPU): hf {hf_wall:.1f} ({hf_cpu:.1f}), llamacpp {llama_wall:.1f} "
          f"({llama_cpu:.1f}); speed-up {hf_wall / llama_wall:.1f}x ({hf_cpu / llama_cpu:.1f}x)")


if __name__ == "__main__":
    main()
