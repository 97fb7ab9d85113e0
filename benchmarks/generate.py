"""Generation speed and peak memory: hashhop against the reference algorithm, in one run.

Each measurement runs in a fresh subprocess so its peak resident memory is its own;
imports happen before the clock starts. Peak memory is the process's VmHWM (Linux).
The workload is the reference's own example: 2 hops, 16-letter hashes, 3 chars per token,
5 queries, no chain of thought.

    .venv/bin/python benchmarks/generate.py                 # 1M, 10M, 100M tokens
    .venv/bin/python benchmarks/generate.py --sizes 1,10 --baseline-up-to 10
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

CHARS_PER_TOKEN = 3
HOPS, HASH_LEN, QUERIES = 2, 16, 5

MEASURE = r"""
import json, re, sys, time
sys.path.insert(0, {bench_dir!r})
n_chars = {n_chars}
import reference_generator
from hashhop import MultiHopEval
from hashhop.dataset import write_dataset
from hashhop.task import TaskSpec
start = time.perf_counter()
if {kind!r} == "reference":
    sample = reference_generator.make_one(n_chars, {queries}, {hops}, {hash_len}, False)
    produced = len(sample.prompt)
elif {kind!r} == "hashhop in memory":
    sample = MultiHopEval.make_one(n_chars, {queries}, {hops}, {hash_len}, False, seed=0)
    produced = len(sample.prompt)
else:
    spec = TaskSpec(size=n_chars, unit="chars", hops={hops}, hash_len={hash_len}, queries={queries})
    produced = write_dataset({out!r}, [spec])
seconds = time.perf_counter() - start
peak_mb = int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read())[1]) / 1024
print(json.dumps({{"seconds": seconds, "peak_mb": peak_mb, "chars": produced}}))
"""


def measure(kind: str, million_tokens: int, out: Path) -> dict:
    code = MEASURE.format(
        bench_dir=str(Path(__file__).parent), n_chars=million_tokens * 1_000_000 * CHARS_PER_TOKEN,
        kind=kind, queries=QUERIES, hops=HOPS, hash_len=HASH_LEN, out=str(out),
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,100", help="million tokens, comma separated")
    parser.add_argument("--baseline-up-to", type=int, default=100,
                        help="run the reference baseline only up to this many million tokens")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    print(f"# {date.today()} · {platform.processor() or platform.machine()} · "
          f"Python {platform.python_version()} · {HOPS} hops, L={HASH_LEN}, {CHARS_PER_TOKEN} chars/token")
    print(f"{'tokens':>7} | {'generator':<26} | {'seconds':>8} | {'peak MB':>8} | {'speed-up':>8}")
    print("-" * 70)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "sample.jsonl"
        for size in sizes:
            kinds = ["reference"] if size <= args.baseline_up_to else []
            kinds += ["hashhop in memory"] if size <= 10 else []
            kinds += ["hashhop streamed to JSONL"]
            baseline = None
            for kind in kinds:
                row = measure(kind, size, out)
                baseline = baseline or (row["seconds"] if kind == "reference" else None)
                speedup = f"{baseline / row['seconds']:.0f}x" if baseline else "-"
                print(f"{size:>6}M | {kind:<26} | {row['seconds']:>8.2f} | {row['peak_mb']:>8.0f} | {speedup:>8}")


if __name__ == "__main__":
    main()
