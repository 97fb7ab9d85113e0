"""The reranker: it reorders the first stage's top hits by its features, learns which
feature marks the answer, travels with the encoder into an index, and learns only on
packages the encoder never trained on."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_code_encoder import random_encoder, synthetic_package

from hashhop.code.channels import BM25Channel
from hashhop.code.encoder import CodeEncoder
from hashhop.code.encoder_training import collect_pairs, load_encoder_config, train_encoder
from hashhop.code.index import build_index, load_index, save_index
from hashhop.code.reranker import (
    FEATURES,
    RERANK_DEPTH,
    Reranker,
    candidate_features,
    query_evidence,
)
from hashhop.code.reranker_training import accuracy_at_1, fit_reranker
from hashhop.code.search import CodeSearcher
from hashhop.code.symbols import parse_symbols
from hashhop.errors import HashHopError

FIRST_STAGE = FEATURES.index("first_stage")


def inverting_reranker() -> Reranker:
    """Scores relu(10 - first stage score): the first stage's order, reversed."""
    hidden_weight = np.zeros((len(FEATURES), 1), dtype=np.float32)
    hidden_weight[FIRST_STAGE, 0] = -1.0
    return Reranker(hidden_weight, np.array([10.0], np.float32), np.array([1.0], np.float32), meta={})


@pytest.fixture
def indexed(tmp_path):
    tree = synthetic_package(tmp_path / "pkg", seed=7, n_functions=80)
    _, encoder = random_encoder()
    return build_index(tree)[0], replace(encoder, reranker=inverting_reranker())


def test_the_reranker_reorders_the_top_hits_of_a_description_and_leaves_names_alone(indexed):
    index, encoder = indexed
    index = index.with_encoder(encoder)
    query = "read the lines of the value"
    first_stage = CodeSearcher(index, rerank=False).search(query, RERANK_DEPTH)
    reranked = CodeSearcher(index).search(query, 5)
    expected = sorted(first_stage, key=lambda hit: hit.score)[:5]  # lowest first-stage scores first
    assert [hit.position for hit in reranked] == [hit.position for hit in expected]
    assert all(0 < hit.score < 1 for hit in reranked)  # probabilities among the candidates
    one_word = "fetch_lines_7x3"
    assert CodeSearcher(index).search(one_word, 3) == CodeSearcher(index, rerank=False).search(one_word, 3)
    assert CodeSearcher(index, channels=("names", "bm25")).reranker is None  # its features need the encoder


def test_the_reranker_travels_with_the_encoder_into_an_index(indexed, tmp_path):
    index, encoder = indexed
    encoder.save(tmp_path / "enc")
    loaded = CodeEncoder.load(tmp_path / "enc")
    np.testing.assert_array_equal(loaded.reranker.hidden_weight, encoder.reranker.hidden_weight)
    save_index(index.with_encoder(loaded), tmp_path / "code.idx")
    assert load_index(tmp_path / "code.idx").encoder.reranker is not None
    replace(encoder, reranker=None).save(tmp_path / "enc")  # a retrained encoder without one
    assert CodeEncoder.load(tmp_path / "enc").reranker is None


def test_a_reranker_of_other_features_is_one_clear_error(indexed, tmp_path):
    _, encoder = indexed
    encoder.save(tmp_path / "enc")
    settings = json.loads((tmp_path / "enc" / "reranker.json").read_text())
    settings["features"] = settings["features"][:-1]
    (tmp_path / "enc" / "reranker.json").write_text(json.dumps(settings))
    with pytest.raises(HashHopError, match="other features"):
        CodeEncoder.load(tmp_path / "enc")


def test_fit_reranker_learns_which_feature_marks_the_answer():
    rng = np.random.default_rng(0)
    n_queries, marker = 400, FEATURES.index("own_name_covered")
    features = rng.random((n_queries, RERANK_DEPTH, len(FEATURES)), dtype=np.float32)
    features[:, :, marker] = 0.0
    answers = rng.integers(RERANK_DEPTH, size=n_queries)
    features[np.arange(n_queries), answers, marker] = 1.0
    labels = np.zeros((n_queries, RERANK_DEPTH), dtype=np.float32)
    labels[np.arange(n_queries), answers] = 1.0
    mask = np.ones_like(labels, dtype=bool)
    reranker = fit_reranker(features[:300], labels[:300], mask[:300], hidden=8, epochs=20, lr=1e-2, seed=0)
    scores = np.stack([reranker.logits(example) for example in features[300:]])
    assert accuracy_at_1(scores, labels[300:], mask[300:]) > 0.95  # chance: 1 in 50
    assert accuracy_at_1(-np.arange(RERANK_DEPTH)[None].repeat(100, 0), labels[300:], mask[300:]) < 0.2


def test_the_features_say_how_much_of_the_query_and_the_name_each_candidate_holds():
    symbols = parse_symbols("def read_lines(path):\n    return path\n\ndef read_bytes(path):\n    return path\n", "m", "m.py")
    evidence = query_evidence("read the lines", BM25Channel(symbols))
    zeros = np.zeros(2, dtype=np.float32)
    rows = candidate_features(evidence, symbols, [0, 1], {"bm25": zeros, "encoder": zeros}, zeros, zeros)
    column = {name: rows[:, at].tolist() for at, name in enumerate(FEATURES)}
    assert column["own_name_covered"] == [1.0, 0.0]
    assert column["own_name_coverage"] == [1.0, 0.5]
    assert column["query_coverage"] == [1.0, 0.5]
    assert column["function"] == [1.0, 1.0]


def test_training_config_keeps_the_reranker_packages_from_the_encoder(tmp_path):
    shared = synthetic_package(tmp_path / "shared", seed=3, n_functions=30)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "__init__.py").write_text((shared / "__init__.py").read_text())
    config = load_encoder_config(None, [f"packages=['{copy}']", f"rerank_packages=['{shared}']", "held_out=[]"])
    assert collect_pairs(config, log=lambda line: None) == []  # the copy's pairs are the reranker's code
    result = subprocess.run([sys.executable, "-m", "hashhop", "code", "train", "--set", "packages=['click']", "--set", "rerank_packages=['click']"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "both packages and rerank_packages" in result.stderr


def test_training_with_rerank_packages_saves_an_encoder_with_its_reranker(tmp_path):
    train_tree = synthetic_package(tmp_path / "trainpkg", seed=1, n_functions=200)
    rerank_tree = synthetic_package(tmp_path / "rerankpkg", seed=2, n_functions=120)
    lines: list[str] = []
    config = load_encoder_config(
        None,
        [f"packages=['{train_tree}']", f"rerank_packages=['{rerank_tree}']", "held_out=[]", "steps=20", "batch_size=32",
         "dim=16", "feature_dim=8", "n_buckets=16", "validation_pairs=0", f"out_dir='{tmp_path / 'enc'}'", "rerank_epochs=2"],
    )
    encoder = train_encoder(config, log=lines.append)
    assert encoder.reranker is not None and CodeEncoder.load(tmp_path / "enc").reranker is not None
    assert encoder.reranker.meta["validation"]["queries"] > 0
    assert any(line.startswith("reranker:") and "first stage ->" in line for line in lines)
