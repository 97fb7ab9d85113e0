"""The code encoder's arithmetic in torch, for training; `export` hands the weights to the
numpy `CodeEncoder` that searches with them (a test holds the two equal)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hashhop.code.encoder import BODY, NAME, PAD, QUERY, CodeEncoder

TABLE_INIT_STD = 0.02
"""Learned rows start small, so at first a word is its random features: an untrained
encoder already matches identical words, and training adds what words mean."""


class EncoderModel(nn.Module):
    def __init__(self, n_rows: int, dim: int, feature_dim: int, temperature: float):
        super().__init__()
        self.table = nn.Parameter(torch.randn(n_rows, dim) * TABLE_INIT_STD)
        self.feature_projection = nn.Parameter(torch.randn(feature_dim, dim))
        self.pool_weights = nn.Parameter(torch.zeros(3, n_rows))
        self.query_out = nn.Parameter(torch.eye(dim))
        self.code_out = nn.Parameter(torch.eye(dim))
        self.body_scale = nn.Parameter(torch.ones(()))
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def _pool(self, vectors: torch.Tensor, rows: torch.Tensor, at: torch.Tensor, pad: torch.Tensor, bag: int) -> torch.Tensor:
        """Softmax-weighted mean over each row of `at` (indices into `vectors`), `pad` skipped."""
        logits = self.pool_weights[bag][rows[at]].masked_fill(pad, float("-inf"))
        weights = torch.softmax(logits, dim=-1).nan_to_num(0.0)  # an all-PAD bag pools to zero
        return F.embedding_bag(at, vectors, per_sample_weights=weights, mode="sum")

    def forward(
        self, rows: torch.Tensor, features: torch.Tensor, query: torch.Tensor, name: torch.Tensor, body: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit query and code vectors [B, d]. `rows` and `features` describe every training
        word; `query`, `name`, `body` index them (PAD = -1). Each distinct word of the batch
        is projected once."""
        used, inverse = torch.unique(torch.cat([query, name, body], dim=1).clamp(min=0), return_inverse=True)
        vectors = self.table[rows[used]] + features[used] @ self.feature_projection
        used_rows = rows[used]
        q_at, n_at, b_at = inverse.split([query.size(1), name.size(1), body.size(1)], dim=1)
        queries = self._pool(vectors, used_rows, q_at, query == PAD, QUERY) @ self.query_out
        names = self._pool(vectors, used_rows, n_at, name == PAD, NAME)
        bodies = self._pool(vectors, used_rows, b_at, body == PAD, BODY)
        codes = (names + self.body_scale * bodies) @ self.code_out
        return F.normalize(queries, dim=-1), F.normalize(codes, dim=-1)

    def export(self, vocabulary: dict[str, int], n_buckets: int, meta: dict) -> CodeEncoder:
        def array(parameter: torch.Tensor):
            return parameter.detach().cpu().float().numpy().copy()

        return CodeEncoder(
            vocabulary=vocabulary,
            n_buckets=n_buckets,
            table=array(self.table),
            feature_projection=array(self.feature_projection),
            pool_weights=array(self.pool_weights),
            query_out=array(self.query_out),
            code_out=array(self.code_out),
            body_scale=float(self.body_scale.detach()),
            meta=meta,
        )


def info_nce(queries: torch.Tensor, codes: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric contrastive loss: each query's own code against the batch's other codes."""
    logits = queries @ codes.T * log_scale.exp().clamp(max=100.0)
    targets = torch.arange(len(queries), device=queries.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
