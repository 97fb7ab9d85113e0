"""Our own language models: one file per architecture, one shared block layout and pointer head.

`build_model(ModelConfig(arch, tokenizer.n_fixed, tokenizer.feature_dim))` gives a model whose
`model(ids, features, n_identifiers)` are logits [B, T, n_fixed + U]: the fixed vocabulary,
then the sequence's own identifiers (see blocks.py and embedding.py).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from hashhop.model_config import ModelConfig
from hashhop.models import gla, transformer
from hashhop.models.blocks import LanguageModel


def _build_memory(config: ModelConfig) -> nn.Module:
    from hashhop.memory.model import build  # the memory package imports models: import it late

    return build(config)


ARCHS: dict[str, Callable[[ModelConfig], nn.Module]] = {
    "transformer": transformer.build,
    "gla": gla.build,
    "memory": _build_memory,
}


def build_model(config: ModelConfig) -> nn.Module:
    """A freshly initialised model of config.arch (seed torch first for reproducible weights)."""
    return ARCHS[config.arch](config)


__all__ = ["ARCHS", "LanguageModel", "ModelConfig", "build_model"]
