"""Code search: names in any spelling, typos, descriptions; one clear line for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hashhop.code.index import build_index, load_index, save_index
from hashhop.code.search import CHANNEL_WEIGHTS, PROMINENCE_WEIGHT, CodeSearcher, with_search_state
from hashhop.errors import HashHopError

TREE = {
    "paths.py": '''
def common_prefix(paths):
    """Return the longest leading string shared by every path."""
    shortest = min(paths)
    return shortest


def join_paths(first, *others):
    """Join path components with the separator."""
    return "/".join([first, *others])


def _common_helper(paths):
    return paths
''',
    "counting.py": '''
class Counter(dict):
    """Tally hashable items."""

    def most_common(self, n=None):
        """List the n elements with the largest counts."""
        return sorted(self.items(), key=lambda item: item[1], reverse=True)[:n]

    def total(self):
        """Sum of all counts."""
        return sum(self.values())


def parse_http_response(raw_bytes):
    """Split the status line from the headers of a server reply."""
    status_line, _, headers = raw_bytes.partition(b"\\r\\n")
    return status_line, headers
''',
}


@pytest.fixture(scope="module")
def searcher(tmp_path_factory) -> CodeSearcher:
    root = tmp_path_factory.mktemp("tree")
    for name, text in TREE.items():
        (root / name).write_text(text)
    index, _ = build_index(root)
    return CodeSearcher(index)


def top(searcher: CodeSearcher, query: str) -> str:
    return searcher.search(query, k=3)[0].symbol.qualname


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("common_prefix", "common_prefix"),
        ("commonPrefix", "common_prefix"),
        ("commonprefix", "common_prefix"),
        ("COMMON_PREFIX", "common_prefix"),
        ("comon_prefx", "common_prefix"),
        ("most_comon", "Counter.most_common"),
        ("Counter.most_common", "Counter.most_common"),
        ("ParseHttpResponse", "parse_http_response"),
        ("counter", "Counter"),
    ],
)
def test_names_are_found_in_any_case_or_separators_and_with_typos(searcher, query, expected):
    assert top(searcher, query) == expected


NAME_CLASHES = {
    "web/http/models.py": "class Request:\n" + "".join(f"    setting_{number} = {number}\n" for number in range(60)),
    "clients.py": '''
class Transport:
    def request(self, request):
        return self.send_request(request, request_timeout=request.timeout)


class Client:
    def request(self, request):
        return self.request_queue.put(request)


def load_append(stack):
    return stack.append


def load_appends(stack):
    return stack.extend


def _(message):
    return message
''',
}


@pytest.fixture(scope="module")
def clashes(tmp_path_factory) -> CodeSearcher:
    root = tmp_path_factory.mktemp("clashes")
    for name, text in NAME_CLASHES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return CodeSearcher(build_index(root)[0])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Request", "Request"),
        ("loadappends", "load_appends"),  # the same key; load_append is one edit away
        ("_", "_"),  # a name of underscores only has no key without them
    ],
)
def test_a_name_spelled_as_asked_or_equal_up_to_case_comes_first(clashes, query, expected):
    assert top(clashes, query) == expected


def test_no_channel_can_lift_another_name_over_the_one_spelled_as_asked(clashes):
    """The stdlib's `urllib.request.Request` sat below `request` methods whose words
    BM25 scores higher: an exact spelling must lead by more than BM25 and the prior add."""
    names = {clashes.symbols[p].qualname: score for p, score in clashes.channels["names"].scores("Request", 10).items()}
    most_others_add = CHANNEL_WEIGHTS["bm25"] + PROMINENCE_WEIGHT
    assert names["Request"] - names["Transport.request"] > most_others_add


def test_descriptions_find_code_by_its_words(searcher):
    assert top(searcher, "split status line and headers of http reply") == "parse_http_response"
    assert top(searcher, "sum of the counts") == "Counter.total"


def test_a_name_too_far_from_any_symbol_finds_no_name_match(searcher):
    assert searcher.channels["names"].scores("zzzzqqqq", 10) == {}


def test_hits_are_ranked_and_limited_to_k(searcher):
    hits = searcher.search("paths", k=2)
    assert len(hits) == 2 and hits[0].score >= hits[1].score


@pytest.mark.parametrize(("query", "k", "message"), [("   ", 5, "empty"), ("x" * 5000, 5, "characters"), ("a", 0, "k must")])
def test_bad_queries_are_one_clear_error(searcher, query, k, message):
    with pytest.raises(HashHopError, match=message):
        searcher.search(query, k)


def test_unknown_channels_are_refused(tmp_path):
    (tmp_path / "a.py").write_text("def a(): pass\n")
    index, _ = build_index(tmp_path)
    with pytest.raises(HashHopError, match="unknown search channel 'vectors'"):
        CodeSearcher(index, channels=("vectors",))


HASHHOP = [sys.executable, "-m", "hashhop"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*HASHHOP, *args], capture_output=True, text=True, check=False)


def test_cli_indexes_a_tree_and_searches_it_as_text_and_json(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    for name, text in TREE.items():
        (root / name).write_text(text)
    (root / "broken.py").write_text("def broken(:\n")
    index = tmp_path / "code.idx"
    built = run("code", "index", str(root), "-o", str(index))
    assert built.returncode == 0, built.stderr
    assert "skipped" in built.stderr and "broken.py" in built.stderr
    text = run("code", "search", str(index), "comon_prefix", "-k", "2")
    assert text.returncode == 0 and text.stdout.startswith(" 1. paths.common_prefix  (tree/paths.py:2)")
    rows = json.loads(run("code", "search", str(index), "most common elements", "--json").stdout)
    assert rows[0]["name"] == "counting.Counter.most_common" and rows[0]["line"] == 5


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    for result in (
        run("code", "search", str(tmp_path / "missing.idx"), "x"),
        run("code", "index", str(tmp_path / "no-such-tree"), "-o", str(tmp_path / "x.idx")),
        run("code", "index", str(tmp_path), "-o", str(tmp_path / "no-dir" / "x.idx")),
    ):
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("hashhop: error:")
    (tmp_path / "a.py").write_text("def a(): pass\n")
    run("code", "index", str(tmp_path), "-o", str(tmp_path / "x.idx"))
    empty = run("code", "search", str(tmp_path / "x.idx"), " ")
    assert empty.returncode == 2 and "empty" in empty.stderr


def test_python_api_matches_the_cli(searcher):
    hit = searcher.search("join path components", k=1)[0]
    assert hit.as_dict()["name"] == "paths.join_paths" and hit.as_dict()["summary"].startswith("Join path")


def test_a_saved_search_state_ranks_as_a_rebuilt_one(tmp_path):
    for name, text in TREE.items():
        (tmp_path / name).write_text(text)
    index, _ = build_index(tmp_path)
    save_index(with_search_state(index), tmp_path / "code.idx")
    loaded = load_index(tmp_path / "code.idx")
    assert loaded.search_state
    for query in ("sum of the counts", "split headers", "comon_prefix"):
        restored = [(hit.position, round(hit.score, 6)) for hit in CodeSearcher(loaded).search(query, 5)]
        rebuilt = [(hit.position, round(hit.score, 6)) for hit in CodeSearcher(index).search(query, 5)]
        assert restored == rebuilt
