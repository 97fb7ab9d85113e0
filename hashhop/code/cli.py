"""`hashhop code ...`: index a Python tree, search it, serve it to coding agents."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from hashhop.errors import HashHopError

code_app = typer.Typer(
    help="Code memory: find functions, methods and classes of a Python tree by name, typo or description.",
    no_args_is_help=True,
)

DEFAULT_EXCLUDE: tuple[str, ...] = ()


@code_app.command("index")
def index_tree(
    trees: Annotated[list[Path], typer.Argument(help="Python source trees (directories) to index; several make one index.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Index file to write; an existing one is updated (only changed files are re-parsed).")],
    exclude: Annotated[list[str] | None, typer.Option(help="Glob of files or directories to leave out (repeatable), e.g. 'tests' or '*/test_*.py'.")] = None,
    docstrings: Annotated[bool, typer.Option("--docstrings/--no-docstrings", help="Keep docstrings in the index (searchable).")] = True,
    full: Annotated[bool, typer.Option("--full", help="Re-parse every file even if the index is up to date.")] = False,
    encoder: Annotated[Path | None, typer.Option(help="A trained code encoder (hashhop code train) for search by description; an updated index keeps its own.")] = None,
) -> None:
    """Parse every .py file (never importing it) and write the index atomically."""
    from hashhop.code.encoder import CodeEncoder
    from hashhop.code.index import CodeIndex, build_index, load_index, save_index
    from hashhop.code.search import with_search_state
    from hashhop.dataset import check_parent_dir

    check_parent_dir(output)
    trained = CodeEncoder.load(encoder) if encoder is not None else None
    previous = load_index(output) if output.exists() and not full else None
    if trained is None and previous is not None:
        trained = previous.encoder
    started = time.perf_counter()
    built = []
    parsed = reused = 0
    for tree in trees:
        index, report = build_index(
            tree, tuple(exclude or DEFAULT_EXCLUDE), docstrings=docstrings, previous=previous, warn=_warn, progress=True
        )
        built.append(index)
        parsed, reused = parsed + report.parsed, reused + report.reused
    combined = with_search_state(CodeIndex.combine(built).with_encoder(trained, previous))
    save_index(combined, output)
    skipped = f", skipped {len(combined.skipped)}" if combined.skipped else ""
    typer.echo(
        f"indexed {len(combined.symbols):,} symbols from {len(combined.files):,} files "
        f"(parsed {parsed:,}, unchanged {reused:,}{skipped}) in {time.perf_counter() - started:.1f} s -> {output}",
        err=True,
    )


@code_app.command("search")
def search(
    index: Annotated[Path, typer.Argument(help="Index file written by `hashhop code index`.")],
    query: Annotated[str, typer.Argument(help="A name (exact, misspelled, any case: 'commonPrefix', 'Counter.most_comon') or a description.")],
    k: Annotated[int, typer.Option("-k", help="Results to show.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list of results instead of a table.")] = False,
) -> None:
    """Ranked results: qualified name, file:line, signature, first docstring line, score (for a description searched with a reranker: its probability among the top 50)."""
    from hashhop.code.index import load_index
    from hashhop.code.search import CodeSearcher

    hits = CodeSearcher(load_index(index)).search(query, k)
    if as_json:
        typer.echo(json.dumps([hit.as_dict() for hit in hits], indent=1))
        return
    for rank, hit in enumerate(hits, 1):
        row = hit.as_dict()
        typer.echo(f"{rank:>2}. {row['name']}  ({row['path']}:{row['line']})  score {row['score']:.3f}")
        typer.echo(f"    {row['signature']}")
        if row["summary"]:
            typer.echo(f"    {row['summary']}")


@code_app.command("serve")
def serve(
    index: Annotated[Path, typer.Argument(help="Index file written by `hashhop code index`.")],
    port: Annotated[int | None, typer.Option(help="Serve streamable HTTP on 127.0.0.1:PORT (loopback only; 0 picks a free port) instead of stdio.", min=0, max=65535)] = None,
) -> None:
    """Serve an index to coding agents as an MCP server: tools search_code and get_source.

    Over stdio by default: the agent starts the server itself. Register it in the client's MCP config (Claude Desktop: claude_desktop_config.json; Claude Code: .mcp.json in the project, or `claude mcp add hashhop-code -- hashhop code serve /abs/path/code.idx`):

    {"mcpServers": {"hashhop-code": {"command": "hashhop", "args": ["code", "serve", "/abs/path/code.idx"]}}}

    With --port it listens at http://127.0.0.1:PORT/mcp instead, for clients that connect by URL.
    """
    try:
        from hashhop.code.serve import serve_index
    except ModuleNotFoundError as error:
        raise HashHopError(f"hashhop code serve needs the package {error.name!r}: pip install 'hashhop[code]'") from None

    serve_index(index, port)


@code_app.command("train")
def train_encoder(
    config: Annotated[Path | None, typer.Option(help="TOML config (see configs/code_encoder.toml).")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a field: --set steps=500 (TOML values).")] = None,
) -> None:
    """Train the code encoder on installed packages (never imported), holding out the trees it is evaluated on, and its reranker on rerank_packages, which the encoder never reads."""
    from hashhop.code.encoder_training import load_encoder_config
    from hashhop.code.encoder_training import train_encoder as train

    settings = load_encoder_config(config, overrides or [])
    train(settings, log=lambda line: typer.echo(line, err=True))
    typer.echo(f"saved the code encoder to {settings.out_dir}", err=True)


def _warn(message: str) -> None:
    print(f"hashhop: warning: {message}", file=sys.stderr)
