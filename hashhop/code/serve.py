"""A code index as a Model Context Protocol server, so coding agents search it with their own tools.

Two tools: `search_code` (the ranked results of `CodeSearcher`) and `get_source` (a symbol's
source by its full name). The index is loaded and the searcher built once, before anything
listens: a missing index fails at start-up, never on an agent's first call. Over stdio by
default (the client starts the server); on a port it listens on loopback only, since the
tools hand out source code to whoever connects.
"""

from __future__ import annotations

import inspect
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from hashhop import __version__
from hashhop.code.index import CodeIndex, load_index
from hashhop.code.search import CodeSearcher
from hashhop.code.symbols import Symbol
from hashhop.errors import HashHopError

SERVER_NAME = "hashhop-code"
LOOPBACK = "127.0.0.1"
HTTP_PATH = "/mcp"
SUGGESTIONS = 5
"""Close names offered when `get_source` is asked for a name the index does not hold."""
LOG_LEVEL = "WARNING"
"""The SDK's log level: INFO would log every request and every agent's misspelled name."""

INSTRUCTIONS = (
    "Search an indexed Python codebase. search_code finds functions, methods and classes by "
    "name (exact, misspelled, any case or separators) or by a description of what they do; "
    "get_source returns the source of one of them by the full name that search_code reports."
)


@dataclass(frozen=True)
class SymbolSource:
    """One definition as `get_source` returns it: where it is, how it is called, its code."""

    name: str
    kind: str
    path: str
    file: str
    line: int
    signature: str
    source: str


def build_server(index: CodeIndex) -> MCPServer:
    """An MCP server answering from `index`; run it with `.run()` (stdio) or `serve_index`."""
    searcher = CodeSearcher(index)
    definitions: dict[str, list[Symbol]] = {}
    for symbol in searcher.symbols:
        definitions.setdefault(symbol.full_name, []).append(symbol)

    def search_code(
        query: Annotated[str, Field(description="A name ('commonPrefix', 'Counter.most_comon') or words describing what the code does.")],
        k: Annotated[int, Field(description="How many results.", ge=1)] = 10,
    ) -> list[dict[str, Any]]:
        """Find functions, methods and classes by name (exact, misspelled, any case) or by
        description. Each result has the full name (for get_source), kind, path, line,
        signature, the first line of its docstring and a score, best first."""
        try:
            return [hit.as_dict() for hit in searcher.search(query, k)]
        except HashHopError as error:
            raise ToolError(str(error)) from None

    def get_source(
        name: Annotated[str, Field(description="Full name as search_code reports it: 'package.module.Class.method'.")],
    ) -> list[SymbolSource]:
        """The source of a function, method or class, as indexed, by its full name. Usually one
        definition; several when the name is defined more than once (a property and its
        setter, a function defined per platform)."""
        found = definitions.get(name.strip())
        if found is None:
            raise ToolError(_unknown_name(name, searcher))
        return [_source(symbol, index) for symbol in found]

    server = MCPServer(SERVER_NAME, version=__version__, instructions=INSTRUCTIONS, log_level=LOG_LEVEL)
    for tool in (search_code, get_source):
        server.add_tool(tool, description=inspect.getdoc(tool))  # getdoc: without the indentation
    return server


def serve_index(index_path: Path, port: int | None = None) -> None:
    """Load the index, then serve it over stdio, or over streamable HTTP on loopback `port`
    (0: any free port). Start-up problems (no index, port taken) are a `HashHopError` or an
    `OSError` raised before anything listens; the address served is announced on stderr."""
    index = load_index(index_path)
    server = build_server(index)
    count = f"{len(index.symbols):,} symbols of {index_path}"
    if port is None:
        print(f"hashhop: serving {count} over MCP on stdio", file=sys.stderr)
        server.run()
        return
    listener = socket.create_server((LOOPBACK, port))
    print(f"hashhop: serving {count} over MCP at http://{LOOPBACK}:{listener.getsockname()[1]}{HTTP_PATH}", file=sys.stderr)
    app = server.streamable_http_app(streamable_http_path=HTTP_PATH, host=LOOPBACK)
    uvicorn.Server(uvicorn.Config(app, log_level=LOG_LEVEL.lower())).run(sockets=[listener])


def _source(symbol: Symbol, index: CodeIndex) -> SymbolSource:
    label, _, relative = symbol.path.partition("/")
    return SymbolSource(
        name=symbol.full_name,
        kind=symbol.kind,
        path=symbol.path,
        file=str(Path(index.roots[label]["path"]) / relative),
        line=symbol.line,
        signature=symbol.signature,
        source=symbol.source,
    )


def _unknown_name(name: str, searcher: CodeSearcher) -> str:
    """Why `name` gave nothing, with the names a search for it finds (it may be misspelled,
    or lack its module)."""
    try:
        close = [hit.symbol.full_name for hit in searcher.search(name, SUGGESTIONS)]
    except HashHopError as error:
        return str(error)
    suggestion = f"; close names: {', '.join(close)}" if close else ""
    return f"no symbol named {name!r} in the index (give the full name, as search_code reports it){suggestion}"
