"""The model configuration: every number that shapes a model, saved as config.json with it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from hashhop.errors import HashHopError

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

    def __post_init__(self) -> None:
        if self.n_fixed < 1 or self.feature_dim < 0:
            raise HashHopError(
                f"need n_fixed >= 1 and feature_dim >= 0, got {self.n_fixed}, {self.feature_dim}"
            )
        if self.d_model < 1 or self.n_layers < 1 or self.n_heads < 1 or self.d_model % self.n_heads:
            raise HashHopError(
                f"d_model ({self.d_model}) must be a positive multiple of n_heads ({self.n_heads})"
            )
        if self.head_dim < 0:
            raise HashHopError(f"head_dim must be >= 0, got {self.head_dim}")
        if self.positional not in POSITIONALS:
            raise HashHopError(f"positional must be one of {POSITIONALS}, got {self.positional!r}")
        if self.conv_kernel < 0 or self.max_len < 0:
            raise HashHopError("conv_kernel and max_len must be >= 0")

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
