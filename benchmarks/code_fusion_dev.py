"""Choose code-search settings on a dev corpus, never on the benchmark's sets.

The dev corpus is installed packages the given encoder did not train on. The shipped
config trains on them, so a dev encoder holds them out: every pair whose body or summary
occurs in a held-out tree is dropped, which is every pair of those packages and their copies.

    hashhop code train --config configs/code_encoder.toml --set out_dir=runs/code/encoder-dev \
        --set 'held_out=["stdlib","numpy","lm_eval","datasets","accelerate","pydantic","fontTools","_pytest","aiohttp","fsspec","rich"]'
    PYTHONPATH=. python benchmarks/code_fusion_dev.py --encoder runs/code/encoder-dev

Queries are 1,000 seeded docstring first sentences, searched against the docstring-free
index; the table gives Acc@1 and MRR@10 for each encoder weight without the reranker, and at
the shipped weight with it when the encoder carries one (its rerank_packages are neither the
encoder's nor the dev corpus's).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from hashhop.code import search
from hashhop.code.encoder import CodeEncoder
from hashhop.code.encoder_training import tree_of
from hashhop.code.reranker_training import rerank_queries

DEV_PACKAGES = ["lm_eval", "datasets", "accelerate", "pydantic", "fontTools", "_pytest", "aiohttp", "fsspec", "rich"]
EXCLUDE = ("tests", "test", "testing", "test_*.py")
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
K = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", type=Path, required=True)
    parser.add_argument("--packages", nargs="+", default=DEV_PACKAGES)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    encoder = CodeEncoder.load(args.encoder)
    without, relevant = rerank_queries([tree_of(name) for name in args.packages], EXCLUDE)
    without = without.with_encoder(encoder)
    queries = random.Random(args.seed).sample(sorted(relevant), args.queries)
    print(f"{len(without.symbols):,} symbols, {len(queries):,} queries")
    print("| encoder weight | reranker | Acc@1 % | MRR@10 |\n|---:|---|---:|---:|")
    runs = [(weight, False) for weight in WEIGHTS] + [(search.CHANNEL_WEIGHTS["encoder"], True)] * (encoder.reranker is not None)
    for weight, rerank in runs:
        search.CHANNEL_WEIGHTS["encoder"] = weight
        searcher = search.CodeSearcher(without, rerank=rerank)
        hits = reciprocal = 0.0
        for query in queries:
            names = [hit.symbol.full_name for hit in searcher.search(query, K)]
            rank = next((i for i, name in enumerate(names) if name in relevant[query]), None)
            if rank is not None:
                hits += rank == 0
                reciprocal += 1 / (rank + 1)
        print(f"| {weight} | {'yes' if rerank else 'no'} | {100 * hits / len(queries):.1f} | {reciprocal / len(queries):.3f} |")

if __name__ == "__main__":
    main()
