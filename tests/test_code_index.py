"""Code index: parse without importing, skip what is not Python, update only what changed."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from hashhop.code.index import CodeIndex, build_index, load_index, save_index
from hashhop.code.symbols import module_name, parse_symbols
from hashhop.code.words import symbol_words
from hashhop.errors import HashHopError

SOURCE = textwrap.dedent(
    '''
    """A module."""
    import functools


    def common_prefix(paths: list[str]) -> str:
        """Return the longest prefix shared by all paths.

        More words.
        """
        # walk the shortest path
        return min(paths)


    class Counter(dict):
        """Count things."""

        @functools.cache
        def most_common(self, n=None):
            """List the n most common elements."""
            def by_count(item):
                return item[1]
            return sorted(self.items(), key=by_count)[:n]
    '''
)


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def test_parse_finds_functions_classes_and_methods_with_qualified_names():
    symbols = parse_symbols(SOURCE, "pkg.mod", "pkg/mod.py")
    assert [(s.qualname, s.kind) for s in symbols] == [
        ("common_prefix", "function"),
        ("Counter", "class"),
        ("Counter.most_common", "method"),
        ("Counter.most_common.<locals>.by_count", "function"),
    ]
    prefix, counter, method, _ = symbols
    assert prefix.signature == "def common_prefix(paths: list[str]) -> str"
    assert counter.signature == "class Counter(dict)"
    assert prefix.docstring.startswith("Return the longest prefix") and prefix.line == 6
    assert method.source.lstrip().startswith("@functools.cache")
    assert method.full_name == "pkg.mod.Counter.most_common"


def test_code_drops_the_docstring_and_keeps_comments_and_body():
    prefix = parse_symbols(SOURCE, "mod", "mod.py")[0]
    assert "longest prefix" not in prefix.code and "More words" not in prefix.code
    assert "# walk the shortest path" in prefix.code and "return min(paths)" in prefix.code
    assert prefix.code.startswith("def common_prefix(")


def test_a_class_reads_as_its_own_lines_without_its_members_bodies_with_or_without_docstrings():
    counter = parse_symbols(SOURCE, "mod", "mod.py")[1]
    for symbol in (counter, counter.without_docstring()):
        own = symbol.own_source
        assert "def most_common(self, n=None):" in own and "@functools.cache" in own
        assert "sorted(self.items()" not in own and "by_count" not in own and "most common elements" not in own
    assert "Count things." in counter.own_source and "Count things." not in counter.without_docstring().own_source
    prefix = parse_symbols(SOURCE, "mod", "mod.py")[0]
    assert prefix.own_source == prefix.source  # a function reads whole
    _, words = symbol_words(counter)  # what BM25 and the encoder read
    assert "most" in words and "sort" not in words and "item" not in words


def test_module_names_follow_the_file_path():
    assert module_name("os/path.py") == "os.path"
    assert module_name("pkg/__init__.py") == "pkg"
    assert module_name("core/umath.py", "numpy") == "numpy.core.umath"


def test_indexing_never_imports_the_code_it_reads(tmp_path):
    marker = tmp_path / "imported.txt"
    hostile = f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit('imported!')\n\ndef target():\n    pass\n"
    tree = write_tree(tmp_path / "tree", {"evil.py": hostile})
    index, _ = build_index(tree)
    assert [s.qualname for s in index.symbols] == ["target"]
    assert not marker.exists()


def test_malformed_files_are_skipped_with_a_reason_and_counted(tmp_path):
    tree = write_tree(
        tmp_path / "tree",
        {
            "good.py": "def fine():\n    pass\n",
            "broken.py": "def broken(:\n",
            "binary.py": b"\x00\x01\x02def x(): pass",
            "latin.py": b"# -*- coding: ascii -*-\ns = '\xe9'\n",
        },
    )
    warnings: list[str] = []
    index, report = build_index(tree, warn=warnings.append)
    assert [s.qualname for s in index.symbols] == ["fine"]
    assert report.skipped == 3 and len(warnings) == 3
    assert "syntax error" in index.skipped[f"{tree.name}/broken.py"]
    assert "binary" in index.skipped[f"{tree.name}/binary.py"]


def test_symlinks_leaving_the_tree_are_not_followed(tmp_path):
    outside = write_tree(tmp_path / "outside", {"secret.py": "def secret():\n    pass\n"})
    tree = write_tree(tmp_path / "tree", {"inside.py": "def inside():\n    pass\n"})
    (tree / "link.py").symlink_to(outside / "secret.py")
    (tree / "linkdir").symlink_to(outside, target_is_directory=True)
    (tree / "alias.py").symlink_to(tree / "inside.py")
    index, _ = build_index(tree)
    assert sorted(s.path for s in index.symbols) == ["tree/alias.py", "tree/inside.py"]


def test_excluded_patterns_and_hidden_directories_are_left_out(tmp_path):
    tree = write_tree(
        tmp_path / "tree",
        {"a.py": "def a(): pass\n", "tests/t.py": "def t(): pass\n", ".venv/v.py": "def v(): pass\n"},
    )
    index, _ = build_index(tree, exclude=("tests",))
    assert [s.qualname for s in index.symbols] == ["a"]


def test_incremental_update_equals_a_full_rebuild_and_reparses_only_changed_files(tmp_path):
    tree = write_tree(
        tmp_path / "tree",
        {"a.py": "def a(): pass\n", "b.py": "def b(): pass\n", "c.py": "def c(): pass\n"},
    )
    first, _ = build_index(tree)
    (tree / "b.py").write_text("def b2(): pass\n\ndef b3(): pass\n")
    (tree / "c.py").unlink()
    (tree / "d.py").write_text("def d(): pass\n")
    os.utime(tree / "a.py")  # touched, same content: read and digested, not parsed
    updated, report = build_index(tree, previous=first)
    rebuilt, _ = build_index(tree)
    assert updated.symbols == rebuilt.symbols
    assert report.parsed == 2 and report.reused == 1 and report.removed == 1


def test_an_index_without_docstrings_holds_no_docstring_text(tmp_path):
    tree = write_tree(tmp_path / "tree", {"mod.py": SOURCE})
    index, _ = build_index(tree, docstrings=False)
    assert all(not s.docstring and "longest prefix" not in s.source for s in index.symbols)


def test_saved_index_loads_back_equal(tmp_path):
    tree = write_tree(tmp_path / "tree", {"mod.py": SOURCE, "pkg/__init__.py": "def f(): pass\n"})
    index, _ = build_index(tree)
    save_index(index, tmp_path / "code.idx")
    loaded = load_index(tmp_path / "code.idx")
    assert loaded.symbols == index.symbols and loaded.roots == index.roots


def test_combined_indexes_keep_every_tree(tmp_path):
    first, _ = build_index(write_tree(tmp_path / "one", {"a.py": "def a(): pass\n"}))
    second, _ = build_index(write_tree(tmp_path / "two", {"b.py": "def b(): pass\n"}))
    combined = CodeIndex.combine([first, second])
    assert [s.path for s in combined.symbols] == ["one/a.py", "two/b.py"]
    with pytest.raises(HashHopError, match="share the root label"):
        CodeIndex.combine([first, first])


@pytest.mark.parametrize("content", [b"not a zip", b"PK\x05\x06" + bytes(18)])
def test_a_file_that_is_not_an_index_is_one_clear_error(tmp_path, content):
    path = tmp_path / "code.idx"
    path.write_bytes(content)
    with pytest.raises(HashHopError, match="code index"):
        load_index(path)


def test_an_index_of_an_older_format_says_how_to_rebuild_it(tmp_path):
    import json
    import zipfile

    path = tmp_path / "code.idx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("meta.json", json.dumps({"format": "hashhop-code-index", "version": 1}))
    with pytest.raises(HashHopError, match="version 1 code index.*--full"):
        load_index(path)


def test_a_missing_index_says_how_to_make_one(tmp_path):
    with pytest.raises(HashHopError, match="hashhop code index"):
        load_index(tmp_path / "nope.idx")
