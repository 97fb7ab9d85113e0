"""Gated linear attention (GLA): the fixed-size-state control.

Per head, a matrix state is decayed and written once per token,

    S_t = diag(g_t) S_{t-1} + k_t v_t^T,    o_t = q_t S_t,

with a data-dependent decay g_t in (0, 1) per key dimension. The state has n_heads * d_k * d_v
numbers per layer whatever the context length, so it cannot hold many incompressible
`KEY = VALUE` pairs: the benchmark should show recall fall as the prompt grows.

Training uses the chunked form (exact, no loop over time steps): inside a chunk the decays
are folded into q and k, across chunks the state is carried by a short scan. `recurrent`
is the step-by-step definition the chunked form is tested against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hashhop.model_config import ModelConfig
from hashhop.models.blocks import BYTES_PER_FLOAT, LanguageModel

CHUNK = 32
GATE_RANK = 16
GATE_TEMPERATURE = 16.0
"""log g = logsigmoid(x) / 16, as in the GLA paper: decays start close to 1 (long memory)."""
MEMORY_RANGE = (8.0, 4096.0)
"""At init the decay of each key dimension keeps a memory of tau tokens, tau spread geometrically
over this range (per head), so some dimensions can hold a pair across a whole prompt."""
MIN_LOG_DECAY = -2.0
"""Per-step floor on log g (g >= 0.14): keeps exp(+-cumulative decay) within a chunk inside
fp32 range (32 * 2 < 88)."""


def recurrent(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, log_decay: torch.Tensor
) -> torch.Tensor:
    """Reference GLA, one step at a time. q, k, log_decay [B, H, T, K]; v [B, H, T, V]."""
    state = q.new_zeros(q.size(0), q.size(1), q.size(3), v.size(3))
    outputs = []
    for t in range(q.size(2)):
        state = (
            log_decay[:, :, t, :, None].exp() * state + k[:, :, t, :, None] * v[:, :, t, None, :]
        )
        outputs.append((q[:, :, t, :, None] * state).sum(2))
    return torch.stack(outputs, dim=2)


def chunked(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, log_decay: torch.Tensor, chunk: int = CHUNK
) -> torch.Tensor:
    """GLA in chunks of `chunk` steps; same arguments and result as `recurrent`."""
    length = q.size(2)
    pad = -length % chunk
    q, k, v, log_decay = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v, log_decay))
    # [B, H, N, C, *]: N chunks of C steps
    q, k, v, log_decay = (t.unflatten(2, (-1, chunk)) for t in (q, k, v, log_decay))
    decay = log_decay.cumsum(3)  # decay[t] = log of g_1 * ... * g_t inside the chunk
    last = decay[:, :, :, -1:]
    q_decayed, k_grown = q * decay.exp(), k * (-decay).exp()
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    scores = (q_decayed @ k_grown.transpose(-1, -2)).masked_fill(~causal, 0.0)
    inside = scores @ v
    # What each chunk alone writes into the state, decayed to its end: [B, H, N, K, V]
    writes = (k * (last - decay).exp()).transpose(-1, -2) @ v
    state = q.new_zeros(writes.shape[:2] + writes.shape[3:])
    states = []  # the state entering each chunk
    for chunk_decay, write in zip(last.exp().transpose(-1, -2).unbind(2), writes.unbind(2)):
        states.append(state)
        state = chunk_decay * state + write
    before = q_decayed @ torch.stack(states, dim=2)
    return (inside + before).flatten(2, 3)[:, :, :length]


class GatedLinearAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        d, self.n_heads = config.d_model, config.n_heads
        self.d_head, self.width = config.d_head, config.attention_width
        self.qkv = nn.Linear(d, 3 * self.width, bias=False)
        self.gate_down = nn.Linear(d, GATE_RANK, bias=False)
        self.gate_up = nn.Linear(GATE_RANK, self.width)
        tau = torch.logspace(*torch.tensor(MEMORY_RANGE).log10(), self.d_head).repeat(self.n_heads)
        with torch.no_grad():  # logsigmoid(bias) / GATE_TEMPERATURE = -1 / tau
            self.gate_up.bias.copy_(-torch.expm1(GATE_TEMPERATURE / tau).log())
        self.norm = nn.RMSNorm(self.d_head)
        self.out = nn.Linear(self.width, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q, k, v = (
            t.view(batch, length, self.n_heads, self.d_head).transpose(1, 2)
            for t in self.qkv(x).chunk(3, -1)
        )
        log_decay = F.logsigmoid(self.gate_up(self.gate_down(x))) / GATE_TEMPERATURE
        log_decay = (
            log_decay.clamp(min=MIN_LOG_DECAY)
            .view(batch, length, self.n_heads, self.d_head)
            .transpose(1, 2)
        )
        with torch.autocast(x.device.type, enabled=False):  # cumulative decays need fp32
            y = chunked(*(t.float() for t in (q * self.d_head**-0.5, k, v, log_decay)))
        y = self.norm(y.to(x.dtype))
        return self.out(y.transpose(1, 2).reshape(batch, length, self.width))

    def state_bytes(self, seq_len: int) -> int:
        """n_heads matrices of d_k x d_v floats, whatever seq_len."""
        return self.n_heads * self.d_head * self.d_head * BYTES_PER_FLOAT


def build(config: ModelConfig) -> LanguageModel:
    return LanguageModel(config, GatedLinearAttention)
