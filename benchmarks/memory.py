"""The memory model at every context length: accuracy, index recall, and cost beside dense attention.

    python benchmarks/memory.py --model runs/train/memory --dense runs/train/identifier \\
        --tokens 1e3,1e4,1e5,1e6 --out runs/memory-bench

Context lengths are counted as Magic counts them (3 characters a token: 1M tokens = 3M
characters of hash list); each row also gives the pairs and the model's own token count.
For each length and hop count one prompt is generated (more at short lengths, until enough
queries exist), ingested once by streaming, and asked every query of every setting (1-hop,
2-hop CoT, 2-hop skip, 3-hop skip) through the decoding path: index probes, greedy tokens,
exact match of the whole answer. The same questions go to the dense identifier transformer
(a full prefill per question, KV-cache decoding) wherever its context fits `--dense-max`.

Cost, in the same process, same threads, fp32, batch 1: decode time per generated token
(median and p99), memory model against the dense model's KV-cache decode step at the same
length (whose cache is filled with random keys and values beyond `--dense-prefill-max`: the
time of a step depends on the cache's shape, not its content); FLOPs and bytes read per
decoded token counted from the shapes of the code; bytes kept per pair and per token.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hashhop.checkpoint import load_checkpoint
from hashhop.fit import make_sample
from hashhop.generation import greedy_continue
from hashhop.memory.decode import MemoryDecoder
from hashhop.memory.ingest import ingest
from hashhop.memory.store import KEPT_KEY_BITS
from hashhop.permutation import derive_key
from hashhop.render import COMPLETION_HEADER, prompt_chunks, prompt_text, query_answers
from hashhop.score import wilson_interval
from hashhop.task import QUOTE, SEPARATOR, TaskSpec
from hashhop.training_data import EVAL_SEEDS

SETTINGS = {"1-hop": (1, False), "2-hop CoT": (2, True), "2-hop skip": (2, False), "3-hop skip": (3, False)}
BENCH_SEED = 2026
MAX_QUERIES_PER_PROMPT = 100


def parse_sizes(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",")]


def question(hops: int, cot: bool, key: str) -> str:
    """What follows the hash list: the completion header and the open answer line."""
    return "\n\n" + COMPLETION_HEADER.format(hops=hops, cot=cot) + key + SEPARATOR + QUOTE


def prompts_for(tokens: int, hops: int, needed: int) -> list[TaskSpec]:
    """Specs of the prompts that together hold `needed` queries (evaluation seed domain)."""
    probe = make_sample(TaskSpec(size=tokens, unit="tokens", hops=hops, seed=0))
    per_prompt = max(1, min(needed, MAX_QUERIES_PER_PROMPT, probe.n_chains // 2))
    n_prompts = math.ceil(needed / per_prompt)
    base = derive_key(derive_key(BENCH_SEED, EVAL_SEEDS), tokens * 10 + hops)
    return [TaskSpec(size=tokens, unit="tokens", hops=hops, queries=per_prompt, seed=derive_key(base, i))
            for i in range(n_prompts)]


def accuracy_grid(args: argparse.Namespace, loaded, dense) -> list[dict]:
    rows = []
    for tokens in args.tokens:
        needed = args.queries if tokens <= 1_000_000 else args.queries_long
        for hops in sorted({h for name, (h, _) in SETTINGS.items() if name in args.settings}):
            names = [name for name, (h, _) in SETTINGS.items() if h == hops and name in args.settings]
            tallies = {name: {"right": 0, "dense_right": 0, "dense_n": 0, "n": 0} for name in names}
            ingest_s = entries = model_tokens = pairs = memory_bytes = 0
            lookups = hits = 0
            for spec in prompts_for(tokens, hops, needed):
                sample = make_sample(spec)
                began = time.perf_counter()
                memory = ingest(loaded.model, loaded.tokenizer, (c.decode() for c in prompt_chunks(sample)),
                                progress=args.progress)
                ingest_s += time.perf_counter() - began
                entries += len(memory.store)
                memory_bytes += memory.store.nbytes
                model_tokens += memory.n_tokens
                pairs += sample.n_lines
                decoder = MemoryDecoder(loaded.model, loaded.tokenizer, memory, probes=args.probes, track_recall=True)
                dense_context = prompt_text(sample) if dense is not None and tokens <= args.dense_max else None
                for name in names:
                    asked = make_sample(replace(spec, cot=SETTINGS[name][1]))
                    for key, answer in query_answers(asked):
                        text = question(hops, asked.spec.cot, key)
                        expected = answer + QUOTE
                        tally = tallies[name]
                        tally["n"] += 1
                        tally["right"] += decoder.continue_text(text, len(answer.split()) * 2 + 3).text == expected
                        if dense_context is not None and tally["dense_n"] < args.dense_queries:
                            context = dense.tokenizer.encode(dense_context + text)
                            written = greedy_continue(dense.model, dense.tokenizer, [context], len(answer.split()) * 2 + 3)[0]
                            tally["dense_n"] += 1
                            tally["dense_right"] += written == expected
                lookups += decoder.lookups
                hits += decoder.recall_hits
            for name in names:
                tally = tallies[name]
                low, high = wilson_interval(tally["right"], tally["n"])
                row = {"tokens": tokens, "setting": name, "pairs": pairs, "model_tokens": model_tokens,
                       "entries": entries, "bytes_per_pair": memory_bytes / pairs,
                       "probes": args.probes or memory.store.default_probes,
                       "queries": tally["n"], "accuracy": tally["right"] / tally["n"],
                       "low": low, "high": high, "index_recall": hits / max(1, lookups),
                       "ingest_tokens_per_s": model_tokens / ingest_s,
                       "dense_accuracy": None, "dense_queries": tally["dense_n"]}
                if tally["dense_n"]:
                    row["dense_accuracy"] = tally["dense_right"] / tally["dense_n"]
                rows.append(row)
                print(f"{tokens:>11,} {name:<10} {row['accuracy']:6.1%} [{low:.1%}, {high:.1%}] n={tally['n']:<4}"
                      f" recall {row['index_recall']:.4f} pairs {pairs:,} entries {entries:,}"
                      f" {row['bytes_per_pair']:.1f} B/pair"
                      f" ingest {row['ingest_tokens_per_s']:,.0f} tok/s"
                      + (f" dense {row['dense_accuracy']:.1%} (n={tally['dense_n']})" if tally["dense_n"] else ""),
                      flush=True)
    return rows


BYTES = 4  # fp32
BUCKET_OFFSET_BYTES = 4  # a probe reads where its bucket starts and ends (uint32)


def dense_decode_cost(config: dict, context_tokens: int, n_identifiers: int, n_params: int) -> tuple[float, float]:
    """FLOPs and bytes read for one decoded token of the dense transformer with a KV cache of
    `context_tokens`, counted from its shapes (multiply-add = 2 FLOPs)."""
    d, layers, kernel = config["d_model"], config["n_layers"], config["conv_kernel"]
    width = config["n_heads"] * (config["head_dim"] or d // config["n_heads"])
    per_layer = 2 * kernel * d + 2 * d * 3 * width + 4 * context_tokens * width + 2 * width * d + 16 * d * d
    flops = layers * per_layer + 2 * d * (config["n_fixed"] + n_identifiers)
    read = n_params * BYTES + layers * 2 * context_tokens * width * BYTES + n_identifiers * d * BYTES
    return flops, read


def memory_decode_cost(config: dict, n_entries: int, probes: int, n_params: int, text_bytes: int) -> tuple[float, float]:
    """FLOPs and bytes read for one decoded token of the memory model over `n_entries`, as
    hashhop.memory.numpy_step computes it: the window pass (every layer's convolution and keys
    for the whole window; attention and MLP of the last layer at the last token only), the
    reads (queries, bucket-table probes, candidate codes, retrieved values) and the pointer
    head. A probe reads two bucket offsets, and buckets hold about 2 entries whatever the
    memory's size: only the number of probes grows, past a 10M-token memory. Queries and keys
    have the KEPT_KEY_BITS a memory keeps; a retrieved token's text is `text_bytes`."""
    d, layers, kernel, window = config["d_model"], config["n_layers"], config["conv_kernel"], config["window"]
    width = config["n_heads"] * (config["head_dim"] or d // config["n_heads"])
    bits, reads, top_k, features = min(config["code_bits"], KEPT_KEY_BITS), config["n_reads"], config["top_k"], config["feature_dim"]
    embed = window * 2 * features * d
    attend_and_mlp = 4 * window * width + 2 * width * d + 16 * d * d  # one position
    local = layers * window * (2 * kernel * d + 6 * d * width) + (layers - 1) * window * attend_and_mlp + attend_and_mlp
    queries = sum(2 * (d + kernel * d + r * d) * bits for r in range(reads))
    prefix_bits = max(1, round(math.log2(max(2, n_entries) / 2)))
    candidates = probes * n_entries / 2 ** prefix_bits
    search = reads * candidates * bits / 64 * 3
    values = reads * top_k * 2 * features * d
    head = 2 * d * (config["n_fixed"] + window + reads * top_k) + 2 * reads * d * d + 16 * d * d
    flops = embed + local + queries + search + values + head
    read = (n_params * BYTES + reads * probes * 2 * BUCKET_OFFSET_BYTES
            + reads * candidates * (bits // 8) + reads * top_k * text_bytes)
    return flops, read


def dense_cache_of_length(dense, context_ids: list[int], identifiers: list[str], length: int):
    """A dense KV cache of `length` tokens: the real context's prefill when it is that long,
    else a short real prefill padded with random keys and values (step time depends only on
    the cache's shape)."""
    features = torch.from_numpy(dense.tokenizer.features(identifiers))[None]
    counts = torch.tensor([len(identifiers)])
    real = context_ids[-min(len(context_ids), length):]
    with torch.no_grad():
        logits, cache = dense.model.prefill(torch.tensor([real]), features, counts, max_new_tokens=length - len(real) + 512)
        generator = torch.Generator().manual_seed(0)
        for block in cache.blocks:
            kv = block.mixer
            missing = length - len(real)
            if missing > 0:
                shape = (1, kv.keys.size(1), missing, kv.keys.size(3))
                kv.append(torch.randn(shape, generator=generator), torch.randn(shape, generator=generator))
        cache.position = length
    return logits, cache


def time_dense_steps(dense, logits, cache, n_tokens: int) -> list[float]:
    times = []
    with torch.no_grad():
        for _ in range(n_tokens):
            next_id = logits.argmax(-1)
            began = time.perf_counter()
            logits, cache = dense.model.decode_step(next_id, cache)
            times.append(time.perf_counter() - began)
    return times


def time_memory_steps(decoder: MemoryDecoder, questions: list[str], n_tokens: int) -> list[float]:
    """Decode questions one after another until n_tokens decode steps were timed."""
    times: list[float] = []
    step = decoder.step

    def timed(*args):
        began = time.perf_counter()
        piece = step(*args)
        times.append(time.perf_counter() - began)
        return piece

    decoder.step = timed
    while len(times) < n_tokens:
        for text in questions:
            decoder.continue_text(text, 8)
    decoder.step = step
    return times[:n_tokens]


def cost_table(args: argparse.Namespace, loaded, dense) -> list[dict]:
    rows = []
    memory_config = loaded.config["model"]
    memory_params = sum(p.numel() for p in loaded.model.parameters())
    for tokens in args.cost_tokens:
        sample = make_sample(TaskSpec(size=tokens, unit="tokens", hops=1, queries=min(50, max(1, tokens // 40)),
                                      seed=derive_key(BENCH_SEED, tokens)))
        began = time.perf_counter()
        memory = ingest(loaded.model, loaded.tokenizer, (c.decode() for c in prompt_chunks(sample)), progress=args.progress)
        ingest_s = time.perf_counter() - began
        decoder = MemoryDecoder(loaded.model, loaded.tokenizer, memory, probes=args.probes)
        questions = [question(1, False, key) for key, _ in query_answers(sample)]
        memory_times = time_memory_steps(decoder, questions, args.cost_steps)
        probes = args.probes or memory.store.default_probes
        flops, read = memory_decode_cost(memory_config, len(memory.store), probes, memory_params, memory.store.tokens.shape[1])
        row = {"tokens": tokens, "pairs": sample.n_lines, "model_tokens": memory.n_tokens,
               "entries": len(memory.store), "probes": probes, "memory_bytes": memory.store.nbytes,
               "bytes_per_pair": memory.store.nbytes / sample.n_lines,
               "bytes_per_token": memory.store.nbytes / tokens,
               "ingest_tokens_per_s": memory.n_tokens / ingest_s, "ingest_s": ingest_s,
               "memory_ms_median": 1e3 * statistics.median(memory_times),
               "memory_ms_p99": 1e3 * float(np.percentile(memory_times, 99)),
               "memory_flops": flops, "memory_bytes_read": read}
        if dense is not None and tokens <= args.dense_cost_max:
            encoded = dense.tokenizer.encode(prompt_text(sample) + questions[0])
            dense_params = sum(p.numel() for p in dense.model.parameters())
            logits, cache = dense_cache_of_length(dense, encoded.ids[: args.dense_prefill_max], encoded.identifiers, len(encoded.ids))
            dense_times = time_dense_steps(dense, logits, cache, args.cost_steps)
            dense_flops, dense_read = dense_decode_cost(dense.config["model"], len(encoded.ids), len(encoded.identifiers), dense_params)
            row |= {"dense_ms_median": 1e3 * statistics.median(dense_times),
                    "dense_ms_p99": 1e3 * float(np.percentile(dense_times, 99)),
                    "dense_flops": dense_flops, "dense_bytes_read": dense_read,
                    "dense_kv_bytes_per_pair": cache.nbytes / sample.n_lines}
            del cache
        rows.append(row)
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    return rows


def plot_cost(rows: list[dict], path: Path) -> None:
    """Decode time per token (measured) and FLOPs per token (counted) against context length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (timing, counted) = plt.subplots(1, 2, figsize=(10, 4))
    tokens = [row["tokens"] for row in rows]
    dense = [row for row in rows if "dense_ms_median" in row]
    timing.loglog(tokens, [row["memory_ms_median"] for row in rows], "o-", label="memory model")
    timing.loglog([r["tokens"] for r in dense], [r["dense_ms_median"] for r in dense], "s-", label="dense, KV cache")
    counted.loglog(tokens, [row["memory_flops"] for row in rows], "o-", label="memory model")
    counted.loglog([r["tokens"] for r in dense], [r["dense_flops"] for r in dense], "s-", label="dense, KV cache")
    for axis, label in ((timing, "decode ms per token (median, 1 thread)"), (counted, "FLOPs per decoded token")):
        axis.set_xlabel("context (Magic tokens, 3 chars each)")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="memory model checkpoint or run directory")
    parser.add_argument("--dense", help="dense identifier transformer checkpoint (baseline)")
    parser.add_argument("--tokens", type=parse_sizes, default=[], help="lengths of the accuracy grid")
    parser.add_argument("--settings", type=lambda text: text.split(","), default=list(SETTINGS),
                        help=f"settings of the accuracy grid, comma separated (default: {','.join(SETTINGS)})")
    parser.add_argument("--queries", type=int, default=200, help="queries per cell up to 1M tokens")
    parser.add_argument("--queries-long", type=int, default=100, help="queries per cell beyond 1M tokens")
    parser.add_argument("--probes", type=int, default=None,
                        help="index buckets probed per read (default: the memory's own, 256 up to 10M tokens, more past it)")
    parser.add_argument("--dense-max", type=int, default=10_000, help="largest context the dense model answers")
    parser.add_argument("--dense-queries", type=int, default=200, help="dense questions per cell at most")
    parser.add_argument("--cost-tokens", type=parse_sizes, default=[], help="lengths of the cost table")
    parser.add_argument("--cost-steps", type=int, default=200, help="decode steps timed per length")
    parser.add_argument("--dense-cost-max", type=int, default=1_000_000, help="longest dense KV cache timed")
    parser.add_argument("--dense-prefill-max", type=int, default=20_000, help="longest real dense prefill (model tokens)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    loaded = load_checkpoint(Path(args.model))
    dense = load_checkpoint(Path(args.dense)) if args.dense else None
    if args.cost_tokens:
        rows = cost_table(args, loaded, dense)
        (args.out / "cost.json").write_text(json.dumps(rows, indent=1))
        plot_cost(rows, args.out / "cost.png")
    if args.tokens:
        rows = accuracy_grid(args, loaded, dense)
        (args.out / "accuracy.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
