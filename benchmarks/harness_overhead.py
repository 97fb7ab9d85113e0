"""Harness overhead per query: `hashhop eval` against the bare backend, in the same run.

The backend is wrapped so the time spent inside `complete()` (the bare model) is measured
exactly; everything else in the run (sizing prompts with the model's tokenizer, building
instruction prompts, the SQLite cache, scoring, writing results) is the harness's overhead.
A second pass over the same grid is served entirely from the cache.

    .venv/bin/python benchmarks/harness_overhead.py [--model smollm2-135m] [--tokens 500]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

from hashhop.backends import make_backend
from hashhop.harness import Grid, evaluate


class TimedBackend:
    """Passes everything through to a backend, adding up the seconds spent in `complete`."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.seconds_in_complete = 0.0

    def settings(self):
        return self.inner.settings()

    def count_tokens(self, text):
        return self.inner.count_tokens(text)

    @property
    def context_window(self):
        return self.inner.context_window

    def complete(self, prompts, max_new_tokens):
        start = time.perf_counter()
        try:
            return self.inner.complete(prompts, max_new_tokens)
        finally:
            self.seconds_in_complete += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", default="500")
    parser.add_argument("--samples", type=int, default=4)
    args = parser.parse_args()
    backend = TimedBackend(make_backend("hf", model=args.model, device="cpu"))
    grid = Grid(sizes=tuple(int(t) for t in args.tokens.split(",")), hops=(1, 2), samples=args.samples)
    print(f"# {date.today()} · {platform.machine()} · {args.model} on CPU · sizes {grid.sizes}, hops 1,2")
    print(f"{'pass':<14} | {'queries':>7} | {'total s':>8} | {'in backend s':>12} | {'overhead ms/query':>17}")
    with tempfile.TemporaryDirectory() as run_dir:
        for name in ("fresh", "all cached"):
            backend.seconds_in_complete = 0.0
            start = time.perf_counter()
            rows = evaluate(backend, grid, Path(run_dir), model_label=args.model)
            total = time.perf_counter() - start
            overhead_ms = 1000 * (total - backend.seconds_in_complete) / len(rows)
            print(f"{name:<14} | {len(rows):>7} | {total:>8.2f} | {backend.seconds_in_complete:>12.2f} | {overhead_ms:>17.1f}")


if __name__ == "__main__":
    main()
