"""Which positions a memory model's writer keeps: write-gate logits by kind of position.

A diagnostic, not a benchmark of the model: it groups the positions of one generated prompt
by the token and the piece before it (an identifier after ` = '`, after a bare newline, ...)
and prints, per group, how many there are, the share kept (gate above GATE_FLOOR) and the
gate's mean, min and max. The model never sees these groups; they say what it learned.

    python benchmarks/memory_gates.py --model runs/train/memory --hops 1,2,3
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch

from hashhop import TaskSpec, make_sample, prompt_text
from hashhop.checkpoint import load_checkpoint
from hashhop.memory.ingest import embed_pieces
from hashhop.memory.model import GATE_FLOOR


def position_kind(pieces: list[str], position: int) -> str:
    piece = pieces[position]
    before = repr(pieces[position - 1]) if position else "(start)"
    return f"identifier after {before}" if piece.isalnum() else f"symbol {piece!r}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="memory model checkpoint or run directory")
    parser.add_argument("--hops", default="1,2,3", help="prompts to inspect, comma separated")
    parser.add_argument("--chars", type=int, default=30_000, help="prompt length in characters")
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()
    loaded = load_checkpoint(args.model)
    model, tokenizer = loaded.model, loaded.tokenizer
    for hops in (int(hop) for hop in args.hops.split(",")):
        text = prompt_text(make_sample(TaskSpec(size=args.chars, unit="chars", hops=hops, seed=args.seed)))
        pieces = tokenizer.pieces(text)
        with torch.no_grad():
            gates = model.writer(embed_pieces(model, tokenizer, pieces)[0])[1].numpy()
        groups: dict[str, list[float]] = defaultdict(list)
        for position, gate in enumerate(gates):
            groups[position_kind(pieces, position)].append(gate)
        lines = text.count("\n") + 1
        print(f"{hops}-hop prompt: {lines} lines, {np.sum(gates > GATE_FLOOR) / lines:.2f} entries kept a line")
        print(f"  {'position':28} {'count':>6} {'kept':>5} {'gate mean':>9} {'min':>7} {'max':>7}")
        for kind, values in sorted(groups.items(), key=lambda item: -len(item[1])):
            values = np.array(values)
            print(f"  {kind:28} {len(values):6d} {np.mean(values > GATE_FLOOR):5.2f} {values.mean():9.2f} "
                  f"{values.min():7.2f} {values.max():7.2f}")


if __name__ == "__main__":
    main()
