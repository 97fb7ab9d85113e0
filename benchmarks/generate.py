"""Generation speed and peak memory: hashhop against the reference algorithm, in one run.

Each measurement runs in a fresh subprocess so its peak resident memory is its own;
imports happen before the clock starts. Peak memory is the process's VmHWM (Linux).
The `hashhop generate` row is the command as a user runs it (`--prompt-only`), timed from
outside, interpreter start-up and imports included (the reference's time excludes them):
the median of CLI_RUNS runs, its peak from wait4.
The workload is the reference's own example: 2 hops, 16-letter hashes, 3 chars per token,
5 queries, no chain of thought.

    .venv/bin/python benchmarks/generate.py                 # 1M, 10M, 100M tokens
    .venv/bin/python benchmarks/generate.py --sizes 1,10 --baseline-up-to 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

CHARS_PER_TOKEN = 3
HOPS, HASH_LEN, QUERIES = 2, 16, 5
CLI_RUNS = 5
CLI_KIND = "hashhop generate (start-up)"

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


def measure_cli(million_tokens: int, out: Path) -> dict:
    """`hashhop generate --prompt-only`, wall clock from outside: start-up and imports count."""
    command = [
        sys.executable, "-m", "hashhop", "generate", "--tokens", str(million_tokens * 1_000_000),
        "--hops", str(HOPS), "--hash-len", str(HASH_LEN), "--queries", str(QUERIES),
        "--prompt-only", "-o", str(out),
    ]
    runs = []
    for _ in range(CLI_RUNS):
        with tempfile.TemporaryFile() as errors:  # not a pipe: nobody reads it until wait4 returns
            start = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            if process.returncode:
                errors.seek(0)
                raise SystemExit(f"{' '.join(command)} exited with {process.returncode}: {errors.read().decode()}")
        runs.append((time.perf_counter() - start, usage.ru_maxrss / 1024))
    return {"seconds": statistics.median(seconds for seconds, _ in runs), "peak_mb": max(peak for _, peak in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,100", help="million tokens, comma separated")
    parser.add_argument("--baseline-up-to", type=int, default=100,
                        help="run the reference baseline only up to this many million tokens")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    print(f"# {date.today()} · {platform.processor() or platform.machine()} · "
          f"Python {platform.python_version()} · {HOPS} hops, L={HASH_LEN}, {CHARS_PER_TOKEN} chars/token")
    print(f"{'tokens':>7} | {'generator':<28} | {'seconds':>8} | {'peak MB':>8} | {'speed-up':>8}")
    print("-" * 72)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "sample.jsonl"
        for size in sizes:
            kinds = ["reference"] if size <= args.baseline_up_to else []
            kinds += ["hashhop in memory"] if size <= 10 else []
            kinds += ["hashhop streamed to JSONL", CLI_KIND]
            baseline = None
            for kind in kinds:
                row = measure_cli(size, out) if kind == CLI_KIND else measure(kind, size, out)
                baseline = baseline or (row["seconds"] if kind == "reference" else None)
                speedup = f"{baseline / row['seconds']:.0f}x" if baseline else "-"
                print(f"{size:>6}M | {kind:<28} | {row['seconds']:>8.2f} | {row['peak_mb']:>8.0f} | {speedup:>8}")


if __name__ == "__main__":
    main()
