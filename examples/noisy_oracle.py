"""A stand-in 'model' for the demo: the expected answers, with a known fraction corrupted.

Each corrupted answer makes one of the mistakes the scorer diagnoses, so the demo's table
shows every kind. The expected accuracy is (1 - error rate); the scorer must find it.

    python examples/noisy_oracle.py DATASET ANSWERS [--error-rate 0.2] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import re

LINE = re.compile(r"^(\w+) = '(.*)'$", re.MULTILINE)


def corrupt(answer: str, other_hash: str, rng: random.Random) -> str:
    """One wrong answer: early stop, over-hop, another chain's hash, or a made-up hash."""
    hashes = answer.split(" = ")
    mistakes = [
        " = ".join(hashes[:-1]) if len(hashes) > 1 else None,
        answer + " = " + other_hash,
        " = ".join(hashes[:-1] + [other_hash]),
        " = ".join(hashes[:-1] + [hashes[-1][::-1]]),
        "",
    ]
    return rng.choice([mistake for mistake in mistakes if mistake is not None])


def noisy_completion(record: dict, error_rate: float, rng: random.Random) -> str:
    others = list(record["targets"].values())
    def answer(match: re.Match) -> str:
        key, value = match.groups()
        if rng.random() >= error_rate:
            return match[0]
        wrong = corrupt(value, rng.choice(others).split(" = ")[-1], rng)
        return f"{key} = '{wrong}'" if wrong else "I am not sure."
    return "Sure! Here are the answers:\n" + LINE.sub(answer, record["completion"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("answers")
    parser.add_argument("--error-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with open(args.dataset) as source, open(args.answers, "w") as sink:
        for line in source:
            completion = noisy_completion(json.loads(line), args.error_rate, rng)
            sink.write(json.dumps({"completion": completion}) + "\n")


if __name__ == "__main__":
    main()
