"""The model configuration: every number that shapes a model, saved as config.json with it.

Outside `hashhop/models/` because it needs no torch: `hashhop train` checks a config with it
before torch is imported (seconds), and a checkpoint's config is read with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from hashhop.errors import HashHopError

ARCH_NAMES = ("transformer", "gla", "memory")
"""The architectures `hashhop.models.build_model` builds."""
POSITIONALS = ("rope", "none")


@dataclass
class ModelConfig:
    """One model's shape. `n_fixed` and `feature_dim` come from the tokenizer."""

    arch: str
    n_fixed: int
    feature_dim: int
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    head_dim: int = 0
    """Width of each head's queries, keys and values (0 = d_model // n_heads). A lookup among
    N keys is only as exact as random vectors of this width are distinct: the largest chance
    cosine among N of them grows like sqrt(2 ln N / head_dim)."""
    positional: str = "rope"
    """transformer only: "rope" | "none" (GLA needs no positions: its decay orders the past)."""
    conv_kernel: int = 0
    """Width of the short causal depthwise convolution before each mixer (0 = off)."""
    max_len: int = 0
    """Longest sequence the model accepts (0 = no limit)."""
    code_bits: int = 256
    """memory only: bits of each memory key; the index compares keys by Hamming distance."""
    n_reads: int = 3
    """memory only: lookups per decoded token, one after another (one per hop)."""
    window: int = 24
    """memory only: tokens the local decoder sees (the question and the answer so far)."""
    top_k: int = 8
    """memory only: entries each read softmaxes over at decode time (training reads all)."""
    read_scale: float = 10.0
    """memory only: agreement (in [-1, 1]) times this is a read's softmax logit. Fixed, not
    learnt, so training keeps pressing query and key codes to agree on every bit."""
    write_cost: float = 0.02
    """memory only: loss per written entry (times its `write_price`), so the writer keeps few."""
    keep_cost: float = 0.0
    """memory only: weight of the write gate's own loss, binary cross-entropy against how much
    the reads used its entry (`MemoryModel.entry_use`), so positions no read uses close. A
    kind of position settles at the log-odds of its use in training (the shipped model's values
    sit at gate ~-3: a use of ~5%), so it stays above GATE_FLOOR only while questions read more
    than 0.25% of its kind: keep that in mind with longer training prompts."""

    def __post_init__(self) -> None:
        if self.n_fixed < 1 or self.feature_dim < 0:
            raise HashHopError(
                f"need n_fixed >= 1 and feature_dim >= 0, got {self.n_fixed}, {self.feature_dim}"
            )
        checks = [
            (self.arch in ARCH_NAMES, f"unknown arch {self.arch!r}; choose one of {list(ARCH_NAMES)}"),
            (self.n_layers >= 1, f"n_layers must be >= 1, got {self.n_layers}"),
            (self.n_heads >= 1, f"n_heads must be >= 1, got {self.n_heads}"),
            (self.n_heads < 1 or (self.d_model >= 1 and self.d_model % self.n_heads == 0),
             f"d_model ({self.d_model}) must be a positive multiple of n_heads ({self.n_heads})"),
            (self.head_dim >= 0, f"head_dim must be >= 0, got {self.head_dim}"),
            (self.positional in POSITIONALS, f"positional must be one of {POSITIONALS}, got {self.positional!r}"),
            (self.conv_kernel >= 0, f"conv_kernel must be >= 0, got {self.conv_kernel}"),
            (self.max_len >= 0, f"max_len must be >= 0, got {self.max_len}"),
        ]
        for ok, message in checks:
            if not ok:
                raise HashHopError(message)
        if self.arch == "memory":
            self._check_memory()

    def _check_memory(self) -> None:
        checks = [
            (self.code_bits >= 64 and self.code_bits % 64 == 0, f"code_bits must be a positive multiple of 64, got {self.code_bits}"),
            (self.n_reads >= 1, f"n_reads must be >= 1, got {self.n_reads}"),
            (self.conv_kernel >= 3, f"the memory model's writer needs conv_kernel >= 3 (an entry, the token before it and its source), got {self.conv_kernel}"),
            (self.window >= self.conv_kernel, f"window ({self.window}) must be at least conv_kernel ({self.conv_kernel})"),
            (self.top_k >= 1, f"top_k must be >= 1, got {self.top_k}"),
            (self.read_scale > 0 and self.write_cost >= 0 and self.keep_cost >= 0,
             "read_scale must be > 0, write_cost and keep_cost >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise HashHopError(message)

    @property
    def d_head(self) -> int:
        return self.head_dim or self.d_model // self.n_heads

    @property
    def attention_width(self) -> int:
        """Width of all heads together: of q, k and v each."""
        return self.n_heads * self.d_head

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise HashHopError(f"unknown model config fields: {sorted(unknown)}")
        return cls(**data)
