"""`hashhop code serve`: an MCP client starts it, lists its tools, searches, reads source; a
missing index is one line and exit code 2 before anything listens."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from hashhop.code.index import build_index, save_index

REPO = Path(__file__).resolve().parents[1]
"""The server runs with this as its working directory, so `python -m hashhop` is this checkout."""
TIMEOUT_S = 60
"""A server that hangs fails the test instead of hanging CI."""

COUNTING = '''
class Counter(dict):
    """Tally hashable items."""

    def most_common(self, n=None):
        """List the n elements with the largest counts."""
        return sorted(self.items(), key=lambda item: item[1], reverse=True)[:n]


def common_prefix(paths):
    """Return the longest leading string shared by every path."""
    return min(paths)
'''


@pytest.fixture(scope="module")
def index_path(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tree") / "tally"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "counting.py").write_text(COUNTING)
    index, _ = build_index(root)
    path = root.parent / "code.idx"
    save_index(index, path)
    return path


@pytest.fixture(scope="module")
def answers(index_path) -> dict:
    """One server over stdio, asked everything the tests below check."""

    async def ask() -> dict:
        server = StdioServerParameters(command=sys.executable, args=["-m", "hashhop", "code", "serve", str(index_path)], cwd=REPO)
        with anyio.fail_after(TIMEOUT_S):
            async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                return {
                    "tools": (await session.list_tools()).tools,
                    "search": await session.call_tool("search_code", {"query": "most_comon", "k": 2}),
                    "source": await session.call_tool("get_source", {"name": "tally.counting.Counter.most_common"}),
                    "unknown": await session.call_tool("get_source", {"name": "Counter.most_comon"}),
                    "empty query": await session.call_tool("search_code", {"query": "  "}),
                }

    return anyio.run(ask)


def test_the_server_offers_search_code_and_get_source(answers):
    tools = {tool.name: tool for tool in answers["tools"]}
    assert tools.keys() == {"search_code", "get_source"}
    assert set(tools["search_code"].input_schema["properties"]) == {"query", "k"}
    assert tools["search_code"].input_schema["required"] == ["query"]
    assert tools["get_source"].input_schema["required"] == ["name"]


def test_search_code_returns_ranked_results_best_first(answers):
    result = answers["search"]
    assert not result.is_error
    hits = result.structured_content["result"]
    assert len(hits) == 2
    assert hits[0]["name"] == "tally.counting.Counter.most_common"
    assert hits[0]["path"] == "tally/counting.py"
    assert hits[0]["line"] == 5
    assert hits[0]["summary"] == "List the n elements with the largest counts."
    assert hits[0]["score"] >= hits[1]["score"]
    assert json.loads(result.content[0].text) == hits[0]


def test_get_source_returns_the_definition_by_full_name(answers, index_path):
    result = answers["source"]
    assert not result.is_error
    [definition] = result.structured_content["result"]
    assert definition["source"] == (
        "    def most_common(self, n=None):\n"
        '        """List the n elements with the largest counts."""\n'
        "        return sorted(self.items(), key=lambda item: item[1], reverse=True)[:n]\n"
    )
    assert definition["signature"] == "def most_common(self, n=None)"
    assert (definition["path"], definition["line"]) == ("tally/counting.py", 5)
    assert Path(definition["file"]) == (index_path.parent / "tally" / "counting.py").resolve()


def test_get_source_of_an_unknown_name_is_an_error_that_suggests_close_names(answers):
    result = answers["unknown"]
    assert result.is_error
    message = result.content[0].text
    assert "no symbol named 'Counter.most_comon' in the index" in message
    assert "close names: tally.counting.Counter.most_common" in message


def test_a_bad_query_is_an_error_with_the_searchers_message(answers):
    result = answers["empty query"]
    assert result.is_error
    assert result.content[0].text.endswith(": the query is empty")


def test_a_missing_index_is_one_line_and_exit_2_before_serving(tmp_path):
    missing = tmp_path / "missing.idx"
    done = subprocess.run(
        [sys.executable, "-m", "hashhop", "code", "serve", str(missing)],
        cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [f"hashhop: error: no code index at {missing} (make one with: hashhop code index TREE -o {missing})"]


def test_with_a_port_it_serves_streamable_http_on_loopback(index_path):
    server = subprocess.Popen(
        [sys.executable, "-m", "hashhop", "code", "serve", str(index_path), "--port", "0"],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )

    async def search() -> list[dict]:
        with anyio.fail_after(TIMEOUT_S):
            announced = await anyio.to_thread.run_sync(server.stderr.readline, abandon_on_cancel=True)
            url = announced.rsplit(" ", 1)[-1].strip()
            assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp"), announced
            async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("search_code", {"query": "commonPrefix"})
                return result.structured_content["result"]

    try:
        assert anyio.run(search)[0]["name"] == "tally.counting.common_prefix"
    finally:
        server.terminate()
        server.wait(timeout=TIMEOUT_S)
