"""The project's own checkpoints (a directory with `config.json` and safetensors weights).

The model code arrives with the training module. Until then this checks what it can, so a
wrong path or a broken checkpoint is reported as such, and then says plainly that the
model cannot run yet.
"""

import json
from pathlib import Path

from hashhop.backends.base import Backend
from hashhop.errors import HashHopError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def load_checkpoint(*, model: str | Path) -> Backend:
    """A backend for the checkpoint directory `model` (raises until models exist)."""
    directory = Path(model).expanduser()
    read_config(directory)
    if not (directory / WEIGHTS_FILE).is_file():
        raise HashHopError(f"{directory} is not a hashhop checkpoint: it has no {WEIGHTS_FILE}")
    raise HashHopError(
        f"cannot run {directory}: hashhop checkpoints need the training module (not yet available)"
    )


def read_config(directory: Path) -> dict[str, object]:
    """The checkpoint's `config.json` as a dict, with a clear error when it is not one."""
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise HashHopError(f"{directory} is not a hashhop checkpoint: it has no {CONFIG_FILE}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HashHopError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise HashHopError(f"{path} must hold a JSON object, not {type(config).__name__}")
    return config
