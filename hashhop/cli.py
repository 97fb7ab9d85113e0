"""The `hashhop` command line: thin wrappers that parse options and call the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

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
    tokens: Annotated[int | None, typer.Option(help="Prompt budget in tokens (converted with --chars-per-token).")] = None,
    chars: Annotated[int | None, typer.Option(help="Prompt budget in characters (instead of --tokens).")] = None,
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


def parse_int_list(text: str, option: str) -> tuple[int, ...]:
    """'500,2000' -> (500, 2000); '1000..16000' -> doubling from 1000 up to 16000."""
    try:
        if ".." in text:
            low, high = (int(part) for part in text.split(".."))
            if low < 1 or high < low:
                raise ValueError
            values = []
            while low <= high:
                values.append(low)
                low *= 2
            return tuple(values)
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise HashHopError(f"{option} takes a list like 500,2000 or a doubling range like 1000..16000, not {text!r}") from None


DEFAULT_EVAL_TOKENS = (500, 2000)


@app.command(name="eval")
def evaluate(
    backend: Annotated[str, typer.Option(help="openai (any OpenAI-compatible server), hf (local transformers), hashhop (our checkpoints).")],
    model: Annotated[str, typer.Option(help="Model name (openai), or a directory or .gguf file (hf, hashhop).")],
    out: Annotated[Path, typer.Option(help="Run directory: results.jsonl, run.json, cache.sqlite.")],
    suite: Annotated[str | None, typer.Option(help="A standard, versioned grid (v1: see the README); replaces --tokens, --hops, --cot and --samples.")] = None,
    tokens: Annotated[str | None, typer.Option(help="Sizes of the hash list in the model's tokens: 500,2000 or 1000..16000 (doubling). [default: 500,2000]")] = None,
    hops: Annotated[str | None, typer.Option(help="Hop counts, e.g. 1,2,3. [default: 1,2]")] = None,
    cot: Annotated[bool, typer.Option("--cot", help="Chain-of-thought answers only.")] = False,
    no_cot: Annotated[bool, typer.Option("--no-cot", help="Skip answers only (the default).")] = False,
    both: Annotated[bool, typer.Option("--both", help="Both chain-of-thought and skip (same haystacks).")] = False,
    samples: Annotated[int | None, typer.Option(help="Prompts per grid cell. [default: 4]")] = None,
    queries: Annotated[int | None, typer.Option(help="Queries asked per prompt. [default: 1]")] = None,
    hash_len: Annotated[int | None, typer.Option(help="Characters per hash. [default: 16]")] = None,
    seed: Annotated[int | None, typer.Option(help="Grid seed; every prompt's own seed is in results.jsonl. [default: 0]")] = None,
    template: Annotated[str | None, typer.Option(help="instruct (default; completion for hashhop checkpoints), completion, or a template file (fields: {pairs} {task} {hops} {queries} {first_query} {answer_form}).")] = None,
    label: Annotated[str | None, typer.Option(help="Model name in reports (default: from --model).")] = None,
    batch_size: Annotated[int, typer.Option(help="Prompts sent to the backend at once.")] = 4,
    base_url: Annotated[str, typer.Option(help="openai: API root, e.g. http://127.0.0.1:8000/v1.")] = "http://127.0.0.1:8000/v1",
    endpoint: Annotated[str, typer.Option(help="openai: chat or completions.")] = "chat",
    api_key_env: Annotated[str, typer.Option(help="openai: NAME of the environment variable holding the key.")] = "OPENAI_API_KEY",
    context_window: Annotated[int | None, typer.Option(help="openai: the model's context window, to refuse prompts that do not fit.")] = None,
    concurrency: Annotated[int, typer.Option(help="openai: requests in flight.")] = 4,
    timeout: Annotated[float, typer.Option(help="openai: seconds per request before a retry.")] = 300.0,
    device: Annotated[str, typer.Option(help="hf: auto, cpu or cuda.")] = "auto",
) -> None:
    """Evaluate a model over context sizes x hops x answer modes; resumable (answers are cached)."""
    from hashhop.backends import make_backend
    from hashhop.dataset import check_output_dir
    from hashhop.harness import Grid, check_batch_size
    from hashhop.harness import evaluate as run_grid
    from hashhop.prompting import load_template
    from hashhop.suite import suite_grid

    # Every check that needs no model comes before make_backend, which may load one for minutes.
    if cot + no_cot + both > 1:
        raise HashHopError("give at most one of --cot, --no-cot, --both")
    check_batch_size(batch_size)
    modes = (False, True) if both else (True,) if cot else (False,) if no_cot else None
    grid_options = {  # option -> (Grid field, its value, or None where not given)
        "--tokens": ("sizes", None if tokens is None else parse_int_list(tokens, "--tokens")),
        "--hops": ("hops", None if hops is None else parse_int_list(hops, "--hops")),
        "--cot/--no-cot/--both": ("cot_modes", modes),
        "--samples": ("samples", samples),
        "--queries": ("queries", queries),
        "--hash-len": ("hash_len", hash_len),
        "--seed": ("seed", seed),
    }
    given = {option: field_value for option, field_value in grid_options.items() if field_value[1] is not None}
    if suite is not None:
        if given:
            raise HashHopError(f"--suite {suite} fixes the grid, so it cannot be combined with {', '.join(given)}")
        grid = suite_grid(suite)
    else:
        grid = Grid(**{"sizes": DEFAULT_EVAL_TOKENS, **dict(given.values())})
    chosen_template = load_template(template or ("completion" if backend == "hashhop" else "instruct"))
    check_output_dir(out)
    settings: dict[str, object] = {"model": model}
    if backend == "openai":
        settings |= {
            "base_url": base_url, "endpoint": endpoint, "api_key_env": api_key_env,
            "context_window": context_window, "concurrency": concurrency, "timeout_s": timeout,
        }
    elif backend == "hf":
        settings |= {"device": device, "batch_size": batch_size}
    rows = run_grid(
        make_backend(backend, **settings), grid, out,
        model_label=label or Path(model).stem, template=chosen_template, batch_size=batch_size,
    )
    correct = sum(row["correct"] for row in rows)
    typer.echo(f"{correct}/{len(rows)} queries correct; results in {out}/results.jsonl", err=True)


@app.command()
def train(
    config: Annotated[Path | None, typer.Option(help="TOML config (see configs/); defaults otherwise.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config field: --set steps=500 --set model.n_layers=3.")] = None,
) -> None:
    """Train a small model on HashHop (fresh hashes every batch); resumes from --set out_dir's latest checkpoint."""
    try:
        from hashhop.train_config import load_config

        checked = load_config(config, set_ or [])  # before torch loads: a bad field fails at once
        from hashhop.train import train as run_training
    except ModuleNotFoundError as error:
        raise HashHopError(f"hashhop train needs the package {error.name!r}: pip install 'hashhop[train]'") from None

    metrics = run_training(checked).metrics
    typer.echo(f"final loss {metrics['loss']:.4f}, batch exact match {metrics['exact']:.1%}, {metrics['seconds']:.0f} s", err=True)


def _memory_modules():
    """The memory model's modules (they need torch: the [train] extra)."""
    try:
        from hashhop.checkpoint import load_checkpoint
        from hashhop.memory import decode, ingest, persist
    except ModuleNotFoundError as error:
        raise HashHopError(f"the memory model needs the package {error.name!r}: pip install 'hashhop[train]'") from None
    return load_checkpoint, ingest, persist, decode


@app.command(name="ingest")
def ingest_context(
    model: Annotated[Path, typer.Option(help="Memory model checkpoint or training run directory.")],
    prompt: Annotated[Path, typer.Argument(help="Text file of the context (e.g. `hashhop generate --prompt-only`).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Memory file to write (.npz).")],
) -> None:
    """Read a context of any length into a memory file, streaming: read once, ask many times."""
    from hashhop.dataset import check_parent_dir

    load_checkpoint, ingest, persist, _ = _memory_modules()
    if not prompt.is_file():
        raise HashHopError(f"no context file at {prompt}")
    check_parent_dir(output)
    loaded = load_checkpoint(model)
    if loaded.config["model"]["arch"] != "memory":
        raise HashHopError(f"{model} is a {loaded.config['model']['arch']} model, not a memory model")
    memory = ingest.ingest(loaded.model, loaded.tokenizer, ingest.file_chunks(prompt), total_chars=prompt.stat().st_size)
    persist.save_memory(memory, output)
    typer.echo(f"{memory.n_tokens:,} tokens, {len(memory.store):,} entries, {memory.store.nbytes / 2**20:.1f} MiB -> {output}", err=True)


@app.command()
def ask(
    model: Annotated[Path, typer.Option(help="The memory model that wrote the memory.")],
    memory: Annotated[Path, typer.Option(help="Memory file written by `hashhop ingest`.")],
    question: Annotated[str, typer.Argument(help="Text that follows the context, e.g. the completion header and 'KEY = \''.")],
    max_new_tokens: Annotated[int, typer.Option(help="Most tokens to write.")] = 16,
) -> None:
    """Continue a memorised context with a question: what the model writes (greedy, up to the closing quote)."""
    load_checkpoint, _, persist, decode = _memory_modules()
    if max_new_tokens < 1:
        raise HashHopError(f"--max-new-tokens must be at least 1, got {max_new_tokens}")
    stored = persist.load_memory(memory)
    loaded = load_checkpoint(model)
    text = question.encode().decode("unicode_escape")  # let a shell user write \n
    typer.echo(decode.MemoryDecoder(loaded.model, loaded.tokenizer, stored).continue_text(text, max_new_tokens).text)


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run directories written by `hashhop eval` (several models side by side).")],
    out: Annotated[Path | None, typer.Option(help="Where to write heatmap.png, accuracy.png, report.html (default: the first run).")] = None,
) -> None:
    """Tables, heatmaps and an HTML page from one or more evaluation runs."""
    from hashhop.report import write_report

    paths = write_report(runs, out or runs[0])
    typer.echo(paths.table)


def _add_code_commands() -> None:
    """`hashhop code ...` lives in hashhop/code/cli.py; its imports are as lazy as these."""
    from hashhop.code.cli import code_app

    app.add_typer(code_app, name="code")


_add_code_commands()

USAGE_ERROR_STATUS = 2


def main() -> None:
    """Entry point: a user error becomes one line on stderr and exit code 2.

    Typer runs in non-standalone mode so that its usage errors (an unknown option, a missing
    or malformed value) come here as exceptions instead of being drawn as a six-line box.
    """
    try:
        status = app(standalone_mode=False)  # a status when Typer exits early: --help, Ctrl-C (130)
    except HashHopError as error:
        _fail(str(error))
    except OSError as error:
        _fail(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "))
    except Exception as error:
        _fail_on_usage_error(error)
        raise
    sys.exit(status)


def _fail_on_usage_error(error: Exception) -> None:
    """Exit on click's usage errors, known by their shape: Typer vendors its own click in some
    versions, so their class depends on the installed Typer."""
    if type(error).__name__ == "NoArgsIsHelpError":  # `hashhop` alone: the help is printed already
        sys.exit(USAGE_ERROR_STATUS)
    if getattr(error, "exit_code", None) == USAGE_ERROR_STATUS and hasattr(error, "format_message"):
        context = getattr(error, "ctx", None)
        hint = f"; see '{context.command_path} --help'" if context is not None else ""
        _fail(error.format_message().rstrip(".") + hint)


def _fail(message: str) -> None:
    print(f"hashhop: error: {message}", file=sys.stderr)
    sys.exit(USAGE_ERROR_STATUS)


if __name__ == "__main__":
    main()
