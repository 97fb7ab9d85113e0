"""Token embeddings and the tied output head, for a fixed vocabulary plus per-sequence identifiers.

An identifier (one token per hash) has no row in a table: its embedding is a learned linear
map of the fixed random features of its characters, so a hash never seen before still gets
a distinct, nearly orthogonal vector. The output head is tied to the same vectors, so it can
point at any identifier present in the sequence (a copy head) as well as emit a fixed token.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hashhop.errors import HashHopError

FEATURE_EPS = 1e-6


class TokenEmbedding(nn.Module):
    """ids [B, T] -> vectors [B, T, d]; ids >= n_fixed take their identifier's projection."""

    def __init__(self, n_fixed: int, feature_dim: int, d_model: int):
        super().__init__()
        self.n_fixed = n_fixed
        self.fixed = nn.Embedding(n_fixed, d_model)
        nn.init.normal_(self.fixed.weight, std=1.0)
        self.project = nn.Linear(feature_dim, d_model, bias=False) if feature_dim else None
        if self.project is not None:
            nn.init.normal_(self.project.weight, std=1.0 / math.sqrt(feature_dim))

    def identifiers(self, features: torch.Tensor | None) -> torch.Tensor | None:
        """[B, U, F] -> [B, U, d]. Features are scaled to unit RMS, whatever the tokenizer's."""
        if features is None:
            return None
        if self.project is None:
            raise HashHopError("identifier features given to a model built with feature_dim = 0")
        rms = features.pow(2).mean(-1, keepdim=True).add(FEATURE_EPS).rsqrt()
        return self.project(features * rms)

    def forward(self, ids: torch.Tensor, identifiers: torch.Tensor | None) -> torch.Tensor:
        fixed = self.fixed(ids.clamp(max=self.n_fixed - 1))
        if identifiers is None:
            if ids.numel() and int(ids.max()) >= self.n_fixed:
                raise HashHopError("ids >= n_fixed need identifier features")
            return fixed
        slots = (ids - self.n_fixed).clamp(min=0)
        picked = identifiers.gather(1, slots.unsqueeze(-1).expand(-1, -1, identifiers.size(-1)))
        return torch.where((ids >= self.n_fixed).unsqueeze(-1), picked, fixed)


class OutputHead(nn.Module):
    """Final norm, then logits against [fixed embeddings ; this sequence's identifiers].

    Embeddings have unit RMS, so logits are divided by sqrt(d): random logits start near unit
    scale. A learned scale on the pointer logits lets the copy softmax sharpen without every
    embedding growing; it starts at 1 (starting at 4 measured slower to learn recall).
    """

    def __init__(self, d_model: int):
        super().__init__()
        self.norm = nn.RMSNorm(d_model)
        self.pointer_scale = nn.Parameter(torch.ones(()))

    def forward(
        self,
        hidden: torch.Tensor,
        embedding: TokenEmbedding,
        identifiers: torch.Tensor | None,
        n_identifiers: torch.Tensor | None,
    ) -> torch.Tensor:
        hidden = self.norm(hidden) / math.sqrt(hidden.size(-1))
        logits = hidden @ embedding.fixed.weight.T
        if identifiers is None:
            return logits
        pointer = hidden @ identifiers.transpose(1, 2) * self.pointer_scale
        if n_identifiers is not None:
            slots = torch.arange(identifiers.size(1), device=hidden.device)
            padded = slots[None, None, :] >= n_identifiers.to(hidden.device)[:, None, None]
            pointer = pointer.masked_fill(padded, float("-inf"))
        return torch.cat([logits, pointer], dim=-1)
