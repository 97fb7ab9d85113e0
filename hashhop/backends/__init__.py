"""Backends by name, so a config file or the command line can pick one with a string.

Each backend lives in its own module and is imported only when asked for, so `import
hashhop` works without torch, transformers, llama-cpp-python or httpx installed.
"""

import importlib
import inspect

from hashhop.backends.base import Backend, Completion
from hashhop.errors import HashHopError

# kind -> (module, factory, the pip extra that installs what the module imports)
_FACTORIES: dict[str, tuple[str, str, str]] = {
    "openai": ("hashhop.backends.openai", "OpenAIBackend", "openai"),
    "hf": ("hashhop.backends.hf", "HFBackend", "hf"),
    "llamacpp": ("hashhop.backends.llamacpp", "LlamaCppBackend", "llamacpp"),
    "hashhop": ("hashhop.backends.hashhop", "CheckpointBackend", "train"),
}
BACKEND_KINDS: tuple[str, ...] = tuple(_FACTORIES)


def make_backend(kind: str, **settings: object) -> Backend:
    """Build the backend `kind` from keyword settings (a config file's or the CLI's).

    Unknown kinds, misspelled settings and missing optional packages all become one
    HashHopError that says what to fix.
    """
    if kind not in _FACTORIES:
        raise HashHopError(f"unknown backend {kind!r}; choose one of: {', '.join(BACKEND_KINDS)}")
    module_name, factory_name, extra = _FACTORIES[kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] == "hashhop":
            raise
        raise HashHopError(
            f"the {kind} backend needs the package {error.name!r}: pip install 'hashhop[{extra}]'"
        ) from error
    factory = getattr(module, factory_name)
    try:
        inspect.signature(factory).bind(**settings)
    except TypeError as error:
        raise HashHopError(f"{kind} backend settings: {error}") from None
    return factory(**settings)


__all__ = ["BACKEND_KINDS", "Backend", "Completion", "make_backend"]
