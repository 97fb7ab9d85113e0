"""`hashhop code ...`: index a Python tree, search it, serve it to coding agents."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

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
) -> None:
    """Parse every .py file (never importing it) and write the index atomically."""
    from hashhop.code.index import CodeIndex, build_index, load_index, save_index
    from hashhop.dataset import check_parent_dir

    check_parent_dir(output)
    previous = load_index(output) if output.exists() and not full else None
    started = time.perf_counter()
    built = []
    parsed = reused = 0
    for tree in trees:
        index, report = build_index(
            tree, tuple(exclude or DEFAULT_EXCLUDE), docstrings=docstrings, previous=previous, warn=_warn, progress=True
        )
        built.append(index)
        parsed, reused = parsed + report.parsed, reused + report.reused
    combined = CodeIndex.combine(built)
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
    """Ranked results: qualified name, file:line, signature, first docstring line, score."""
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


def _warn(message: str) -> None:
    print(f"hashhop: warning: {message}", file=sys.stderr)
