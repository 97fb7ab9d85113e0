"""The code encoder: numpy search equals torch training, it learns, and it is held out honestly."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hashhop.code.encoder import CodeEncoder, symbol_bags
from hashhop.code.encoder_model import EncoderModel
from hashhop.code.encoder_training import (
    Pair,
    collect_pairs,
    load_encoder_config,
    tokenize_pairs,
    train_encoder,
)
from hashhop.code.index import build_index, load_index, save_index
from hashhop.code.search import CodeSearcher
from hashhop.code.symbols import parse_symbols
from hashhop.code.words import search_words

VERBS = ["read", "write", "sort", "merge", "parse", "count", "join", "split", "load", "store"]
CODE_VERBS = ["fetch", "emit", "arrange", "combine", "decode", "tally", "concat", "chop", "ingest", "persist"]
NOUNS = ["lines", "bytes", "tokens", "records", "headers", "columns", "paths", "images", "frames", "rows"]


def synthetic_package(root: Path, seed: int, n_functions: int = 120) -> Path:
    """Functions whose body words and docstring words differ but go together: 'read' in a
    summary means `fetch_` in code, so only a trained encoder links them."""
    rng = np.random.default_rng(seed)
    code_verb = dict(zip(VERBS, CODE_VERBS, strict=True))
    lines = []
    for number in range(n_functions):
        verb, noun = VERBS[rng.integers(len(VERBS))], NOUNS[rng.integers(len(NOUNS))]
        lines.append(
            f"def {code_verb[verb]}_{noun}_{seed}x{number}(value):\n"
            f'    """{verb.capitalize()} the {noun} of the value quickly."""\n'
            f"    return {code_verb[verb]}_helper(value.{noun}_part, {number})\n"
        )
    root.mkdir(parents=True, exist_ok=True)
    (root / "__init__.py").write_text("\n\n".join(lines))
    return root


def random_encoder(n_words: int = 50, dim: int = 16, feature_dim: int = 8) -> tuple[EncoderModel, CodeEncoder]:
    torch.manual_seed(0)
    model = EncoderModel(n_words + 4, dim, feature_dim, temperature=0.1)
    with torch.no_grad():  # not the init: every parameter matters in this comparison
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    return model, model.export({}, n_buckets=n_words + 4, meta={})


def test_numpy_encoder_equals_the_torch_model_it_was_exported_from(tmp_path):
    symbols = parse_symbols(
        textwrap.dedent(
            '''
            def read_lines(path):
                """Read the lines of a file."""
                return open(path).read().splitlines()

            class Parser:
                def parse_header(self, raw):
                    return raw.split(b":")
            '''
        ),
        "mod",
        "mod.py",
    )
    model, encoder = random_encoder()
    config = load_encoder_config(None, ["max_body_words=512", "max_name_words=16", "max_query_words=48"])
    from hashhop.code.encoder import word_rows
    from hashhop.tokenize import random_features

    pairs = [Pair("read the lines of a text file", symbol) for symbol in symbols]
    tokens = tokenize_pairs(pairs, config)
    rows = torch.from_numpy(word_rows(tokens.words, {}, encoder.n_buckets))
    features = torch.from_numpy(random_features(tokens.words, encoder.feature_dim))
    with torch.no_grad():
        queries, codes = model(rows, features, *(torch.from_numpy(getattr(tokens, n)) for n in ("query", "name", "body")))
    np.testing.assert_allclose(encoder.encode_symbols(symbols), codes.numpy(), atol=1e-5)
    np.testing.assert_allclose(encoder.encode_query(pairs[0].query), queries[0].numpy(), atol=1e-5)


def test_an_untrained_encoder_already_matches_identical_identifiers():
    symbols = parse_symbols("def alpha_beta():\n    return gamma\n\ndef delta():\n    return epsilon\n", "m", "m.py")
    encoder = EncoderModel(4, 32, 64, 0.1).export({}, n_buckets=4, meta={})
    vectors = encoder.encode_symbols(symbols)
    assert int(np.argmax(vectors @ encoder.encode_query("epsilon"))) == 1


def test_training_links_words_the_code_never_uses_and_saves_a_loadable_encoder(tmp_path):
    train_tree = synthetic_package(tmp_path / "trainpkg", seed=1, n_functions=400)
    held_tree = synthetic_package(tmp_path / "heldpkg", seed=2)
    config = load_encoder_config(
        None,
        [f"packages=['{train_tree}']", f"held_out=['{held_tree}']", "steps=300", "batch_size=64",
         "dim=32", "feature_dim=16", "n_buckets=16", "validation_pairs=0", f"out_dir='{tmp_path / 'enc'}'",
         "lr=0.02"],
    )
    encoder = train_encoder(config, log=lambda line: None)
    assert CodeEncoder.load(tmp_path / "enc").vocabulary == encoder.vocabulary
    index, _ = build_index(held_tree, docstrings=False)
    searcher = CodeSearcher(index.with_encoder(encoder), channels=("encoder",))
    truth = {s.qualname: s for s in build_index(held_tree)[0].symbols}
    hits = 0
    for symbol in truth.values():
        summary = symbol.docstring
        found = {hit.symbol.qualname for hit in searcher.search(summary, k=10)}
        same_meaning = {name for name, other in truth.items() if other.docstring == summary}
        hits += bool(found & same_meaning)
    assert hits / len(truth) > 0.8  # 100 summaries, 10 verbs x 10 nouns: chance is ~10%


def test_pairs_from_a_held_out_tree_are_never_trained_on(tmp_path):
    shared = synthetic_package(tmp_path / "shared", seed=3, n_functions=30)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "__init__.py").write_text((shared / "__init__.py").read_text())
    config = load_encoder_config(None, [f"packages=['{copy}']", f"held_out=['{shared}']"])
    assert collect_pairs(config, log=lambda line: None) == []


def test_an_index_with_an_encoder_round_trips_and_searches_with_it(tmp_path):
    tree = synthetic_package(tmp_path / "pkg", seed=4, n_functions=20)
    _, encoder = random_encoder()
    index, _ = build_index(tree)
    save_index(index.with_encoder(encoder), tmp_path / "code.idx")
    loaded = load_index(tmp_path / "code.idx")
    np.testing.assert_allclose(loaded.vectors, encoder.encode_symbols(index.symbols), atol=2e-3)  # stored as float16
    assert set(CodeSearcher(loaded).channels) == {"names", "bm25", "encoder"}


def test_symbol_bags_split_name_from_body():
    symbol = parse_symbols("def read_lines(path):\n    return path.splitlines()\n", "io_tools", "x.py")[0]
    name, body = symbol_bags(symbol)
    assert name == search_words("read_lines")
    assert "splitlin" in body or "splitlines" in body


def test_cli_indexes_with_an_encoder_and_keeps_it_on_update(tmp_path):
    tree = synthetic_package(tmp_path / "pkg", seed=5, n_functions=10)
    _, encoder = random_encoder()
    encoder.save(tmp_path / "enc")
    index = tmp_path / "code.idx"
    run = [sys.executable, "-m", "hashhop", "code", "index", str(tree), "-o", str(index)]
    assert subprocess.run([*run, "--encoder", str(tmp_path / "enc")], capture_output=True, check=False).returncode == 0
    (tree / "extra.py").write_text("def extra_function():\n    return 1\n")
    assert subprocess.run(run, capture_output=True, check=False).returncode == 0
    updated = load_index(index)
    assert updated.encoder is not None and len(updated.vectors) == len(updated.symbols) == 11


def test_cli_training_config_errors_are_one_line_before_any_work(tmp_path):
    for setting, message in (("steps=0", "steps"), ("packages=['no_such_package_xyz']", "not installed")):
        result = subprocess.run([sys.executable, "-m", "hashhop", "code", "train", "--set", setting],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 2 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_an_update_embeds_only_changed_files_and_equals_a_full_embedding(tmp_path):
    tree = synthetic_package(tmp_path / "pkg", seed=6, n_functions=10)
    (tree / "other.py").write_text("def other_function(value):\n    return value\n")
    _, encoder = random_encoder()
    first = build_index(tree)[0].with_encoder(encoder)
    (tree / "other.py").write_text("def changed_function(value):\n    return value + 1\n")
    updated_files, _ = build_index(tree, previous=first)
    calls: list[int] = []
    original = encoder.encode_symbols
    encoder.encode_symbols = lambda symbols: calls.append(len(symbols)) or original(symbols)
    updated = updated_files.with_encoder(encoder, previous=first)
    assert calls == [1]
    np.testing.assert_allclose(updated.vectors, original(updated.symbols), atol=1e-6)
