"""Train one configuration and measure it at 1x, 4x and 16x its training length: the
command behind every row of the identifier-recipe table in RESULTS.md.

    python benchmarks/identifier_recipe.py NAME [--set key=value ...]

starts from configs/identifier.toml, applies the overrides, trains into runs/recipe/NAME
(resuming if it exists), then prints one JSON line of exact match per cell (teacher forced:
see hashhop.training_data.batch_loss) on held-out samples: 200 at 1x, 100 at 4x and 16x,
for 1-hop, 2-hop chain of thought (h2c) and 2-hop skip (h2s). The line is also appended to
runs/recipe/results.jsonl.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hashhop.evaluate_model import eval_specs, exact_matches
from hashhop.fit import make_sample
from hashhop.tokenize import make_tokenizer
from hashhop.train import train
from hashhop.train_config import load_config

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "identifier.toml"
OUT = Path("runs/recipe")
MULTIPLES = ((1, 200), (4, 100), (16, 100))
CELLS = ((1, False, "h1"), (2, True, "h2c"), (2, False, "h2s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override a.b=value")
    args = parser.parse_args()
    config = load_config(CONFIG, [f"out_dir='{OUT / args.name}'", *args.overrides])
    started = time.perf_counter()
    model = train(config).model
    row: dict[str, object] = {"name": args.name, "overrides": args.overrides, "train_s": round(time.perf_counter() - started)}
    tokenizer = make_tokenizer(**config.tokenizer)
    for multiple, n_samples in MULTIPLES:
        for hops, cot, label in CELLS:
            specs = eval_specs(config.task.chars * multiple, hops, cot, n_samples, seed=0, hash_len=config.task.hash_len)
            matches = exact_matches(model, tokenizer, [make_sample(spec) for spec in specs])
            row[f"{multiple}x {label}"] = round(sum(matches) / n_samples, 3)
    line = json.dumps(row)
    print(line)
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "results.jsonl", "a") as file:
        file.write(line + "\n")


if __name__ == "__main__":
    main()
