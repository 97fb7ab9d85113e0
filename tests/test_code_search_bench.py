"""The code search benchmark's query sets and scoring, on a tiny synthetic tree (never the
machine's standard library): typos and variants are mistakes that lead back to one name,
descriptions map to the symbols they describe, metrics follow their definitions."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import numpy as np
import pytest
from code_queries import (
    docstring_queries,
    exact_name_queries,
    paraphrase_queries,
    read_set,
    read_tree,
    typo,
    typo_queries,
    variant_queries,
    write_set,
)
from rapidfuzz.distance import OSA

from hashhop.code.symbols import Symbol
from hashhop.code.words import name_key

TREE = {
    "shapes.py": '''
        class PolygonMesh:
            """Hold the vertices and faces of a polygon mesh."""

            def __init__(self):
                pass

            def add_vertex(self, point):
                """Append a vertex to the mesh and return its index."""

            def faceNormals(self):
                pass

        def read_mesh_file(path):
            """Read a mesh from a file on disk."""

        def add_vertex(mesh, point):
            """Append a vertex to the mesh and return its index."""

        def short_doc():
            """Too short."""
    ''',
    "names.py": '''
        def parse_header(text):
            pass

        def parseHeader(text):
            pass

        def compute_checksum(data):
            """Compute a checksum over the given bytes."""

        def Tokenizer():
            pass
    ''',
}


@pytest.fixture(scope="module")
def symbols(tmp_path_factory) -> list[Symbol]:
    root = tmp_path_factory.mktemp("tree")
    for name, text in TREE.items():
        (root / name).write_text(textwrap.dedent(text))
    return read_tree(root, exclude=())


def names_of(symbols: list[Symbol]) -> set[str]:
    return {symbol.name for symbol in symbols}


def test_exact_names_leave_out_dunders_and_list_every_symbol_of_the_name(symbols):
    queries = {query.text: query.relevant for query in exact_name_queries(symbols, 100, random.Random(0))}
    assert "__init__" not in queries
    assert queries["add_vertex"] == ("shapes.PolygonMesh.add_vertex", "shapes.add_vertex")


def test_a_typo_is_one_or_two_edits_away_and_no_real_name(symbols):
    real_keys = {name_key(name) for name in names_of(symbols)}
    queries = typo_queries(symbols, 100, random.Random(0))
    assert queries
    for query in queries:
        assert name_key(query.text) not in real_keys
        original = {full_name.rpartition(".")[2] for full_name in query.relevant}
        assert len(original) == 1
        assert 1 <= OSA.distance(query.text, original.pop()) <= 2


def test_typos_and_variants_skip_names_another_name_equals_up_to_case(symbols):
    queries = typo_queries(symbols, 100, random.Random(0)) + variant_queries(symbols, 100, random.Random(0))
    relevant = {name for query in queries for name in query.relevant}
    assert not relevant & {"names.parse_header", "names.parseHeader"}


def test_typos_come_from_names_of_at_least_five_characters(symbols):
    for query in typo_queries(symbols, 100, random.Random(1)):
        assert all(len(name.rpartition(".")[2]) >= 5 for name in query.relevant)


def test_one_edit_moves_a_name_by_at_most_one_edit():
    rng = random.Random(3)
    for _ in range(200):
        assert OSA.distance(typo("compute_checksum", 1, rng), "compute_checksum") <= 1


def test_a_variant_is_the_same_name_in_other_case_or_separators_and_no_real_name(symbols):
    queries = variant_queries(symbols, 100, random.Random(0))
    assert queries
    for query in queries:
        (original,) = {full_name.rpartition(".")[2] for full_name in query.relevant}
        assert query.text != original and query.text not in names_of(symbols)
        assert name_key(query.text) == name_key(original)


def test_docstring_queries_are_first_sentences_of_four_words_or_more_with_every_symbol_sharing_them(symbols):
    queries = {query.text: query.relevant for query in docstring_queries(symbols, 100, random.Random(0))}
    assert queries["Append a vertex to the mesh and return its index."] == ("shapes.PolygonMesh.add_vertex", "shapes.add_vertex")
    assert "Too short." not in queries


REFERENCE = """
.. module:: shapes

.. class:: PolygonMesh()

   A mesh of polygons, as vertices and the faces that join them.

   .. method:: add_vertex(point)

      Put one more point into the mesh, :func:`returning <x>` its ``int`` position.

.. method:: PolygonMesh.faceNormals()

   The unit normal of every face.  Computed on demand.

.. function:: read_mesh_file(path)

   Read a mesh from a file on disk.

.. function:: fast_c_only(x)

   A function implemented in C with no Python source.
"""


def test_paraphrases_resolve_nested_and_dotted_methods_strip_markup_and_drop_docstring_copies(symbols, tmp_path):
    (tmp_path / "shapes.rst.txt").write_text(REFERENCE)
    queries, counts = paraphrase_queries(symbols, tmp_path)
    assert {query.text: query.relevant for query in queries} == {
        "A mesh of polygons, as vertices and the faces that join them.": ("shapes.PolygonMesh",),
        "Put one more point into the mesh, returning its int position.": ("shapes.PolygonMesh.add_vertex",),
        "The unit normal of every face.": ("shapes.PolygonMesh.faceNormals",),
    }
    assert (counts.directives, counts.resolved, counts.same_as_docstring) == (5, 4, 1)


def test_a_written_set_reads_back(symbols, tmp_path):
    queries = typo_queries(symbols, 5, random.Random(0))
    write_set(tmp_path / "set.jsonl", queries)
    assert read_set(tmp_path / "set.jsonl") == queries


def test_metrics_follow_their_definitions():
    from code_search import per_query_scores

    scores = per_query_scores([[5, 1, 2], [7, 8, 9], [1, 2, 3]], [frozenset({1, 2}), frozenset({0}), frozenset({1})])
    assert list(scores["acc@1"]) == [0, 0, 1]
    assert np.allclose(scores["mrr@10"], [0.5, 0, 1])
    assert np.allclose(scores["r@10"], [1, 0, 1])


def test_reciprocal_rank_fusion_prefers_what_several_systems_rank_high():
    from code_search import reciprocal_rank_fusion

    assert reciprocal_rank_fusion([[1, 2, 3], [2, 1, 4], [2, 5]], depth=3) == [2, 1, 5]


def test_a_query_whose_relevant_symbols_are_all_missing_is_skipped_and_counted(symbols):
    from code_queries import Query
    from code_search import judge

    judged = judge([Query("x", ("shapes.add_vertex", "gone.f")), Query("y", ("gone.g",))], symbols)
    assert (judged.queries, judged.missing_symbols, judged.skipped_queries) == (["x"], 2, 1)


def test_the_corpus_reads_names_as_the_index_does(tmp_path: Path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("def f():\n    pass\n")
    assert [symbol.full_name for symbol in read_tree(tmp_path / "pkg", exclude=())] == ["pkg.f"]


def test_baselines_are_taken_from_an_earlier_run_only_over_the_same_corpus_and_queries():
    from code_search import earlier_baselines

    row = {"queries": 1000}
    earlier = {"docstring": {"symbols": 23136, "systems": {"hashhop": row, "bm25s": row, "MiniLM": row}}}
    assert set(earlier_baselines(earlier, "docstring", 23136, 1000)) == {"bm25s", "MiniLM"}
    for symbols, queries, set_name in ((23000, 1000, "docstring"), (23136, 500, "docstring"), (23136, 1000, "typo")):
        with pytest.raises(SystemExit, match="run the baselines"):
            earlier_baselines(earlier, set_name, symbols, queries)
