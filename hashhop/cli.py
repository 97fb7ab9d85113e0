"""The `hashhop` command line: thin wrappers that parse options and call the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from hashhop.errors import HashHopError
from hashhop.task import DEFAULT_ALPHABET, TaskSpec, sample_seed

app = typer.Typer(
    help="HashHop: generate long-context hash-hop samples, score answers, evaluate models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.command()
def generate(
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write (JSONL, or text with --prompt-only).")],
    tokens: Annotated[Optional[int], typer.Option(help="Prompt budget in tokens (converted with --chars-per-token).")] = None,
    chars: Annotated[Optional[int], typer.Option(help="Prompt budget in characters (instead of --tokens).")] = None,
    chars_per_token: Annotated[float, typer.Option(help="Characters per token when sizing by tokens.")] = 3.0,
    hops: Annotated[int, typer.Option(help="Links from the query to its answer.")] = 1,
    hash_len: Annotated[int, typer.Option(help="Characters per hash.")] = 16,
    alphabet: Annotated[str, typer.Option(help="Characters hashes are drawn from (letters, digits).")] = DEFAULT_ALPHABET,
    queries: Annotated[int, typer.Option(help="Queries asked in each completion.")] = 1,
    cot: Annotated[bool, typer.Option("--cot/--no-cot", help="Answers write every hop (chain of thought) or only the last.")] = False,
    samples: Annotated[int, typer.Option(help="Samples (JSONL lines) to write.")] = 1,
    seed: Annotated[int, typer.Option(help="Dataset seed; sample i gets its own derived seed, recorded in its spec.")] = 0,
    prompt_only: Annotated[bool, typer.Option("--prompt-only", help="Write the raw prompt text of one sample.")] = False,
) -> None:
    """Write HashHop samples: prompt, completion, targets and spec per JSONL line."""
    from hashhop.dataset import write_dataset

    if (tokens is None) == (chars is None):
        raise HashHopError("give exactly one of --tokens or --chars")
    if samples < 1:
        raise HashHopError(f"--samples must be at least 1, got {samples}")
    if not 0 <= seed < 2**64:
        raise HashHopError(f"--seed must lie in [0, 2**64), got {seed}")
    specs = [
        TaskSpec(
            size=tokens if tokens is not None else chars,
            unit="tokens" if tokens is not None else "chars",
            chars_per_token=chars_per_token,
            hops=hops,
            hash_len=hash_len,
            alphabet=alphabet,
            queries=queries,
            cot=cot,
            seed=sample_seed(seed, index),
        )
        for index in range(samples)
    ]
    written = write_dataset(output, specs, prompt_only=prompt_only)
    typer.echo(f"wrote {samples} sample(s), {written:,} bytes, to {output}", err=True)


@app.command()
def score(
    dataset: Annotated[Path, typer.Argument(help="JSONL samples (ours or made by Magic's generator).")],
    answers: Annotated[Path, typer.Argument(help="JSONL, one object per sample in the same order, with the model's 'completion'.")],
) -> None:
    """Grade a model's answers: exact match per asked query, per-hop credit, diagnoses."""
    from hashhop.score import format_score_table, score_dataset

    typer.echo(format_score_table(score_dataset(dataset, answers)))


def main() -> None:
    """Entry point: a user error becomes one line on stderr and exit code 2."""
    try:
        app()
    except HashHopError as error:
        print(f"hashhop: error: {error}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:
        print(f"hashhop: error: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
