"""EnhancedHybridModel: convolution over time, a recurrent layer, attention pooling, one head per task.

::

    x (batch, seq_len, features)            scaled features of the last seq_len bars
      └─ Conv1d(features → C, kernel k, stride s) + GELU + dropout     local patterns
          └─ GRU / LSTM (C → H, layers)                                  order and memory
              └─ attention pooling over time (or the last state)         → z (batch, H)
                  ├─ signal      MLP → 3 logits (down, neutral, up)
                  ├─ volatility  MLP → softplus → m > 0: expected vol = m · sigma_t
                  ├─ regime      MLP → one logit per regime
                  └─ sltp        MLP → softplus → (sl, tp) > 0 in multiples of sigma_t

Heads switched off in :class:`~morningstar.config.HeadsSpec` are not built (no weights, no
output). The volatility and SL/TP heads predict *scale-free* quantities (multiples of the
volatility known at the bar, ``sigma_t``), so one network serves any asset and price level.

This module imports torch: import it only where torch is installed (see
:func:`morningstar.model._torch.require_torch`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from morningstar.config import NetworkSpec

__all__ = ["EnhancedHybridModel", "head_widths"]

#: Softplus(x) = 1 at this x: the volatility head starts at "same as the last realised vol".
_SOFTPLUS_ONE = math.log(math.e - 1.0)


def head_widths(n_regimes: int) -> dict[str, int]:
    """Output width of each head."""
    return {"signal": 3, "volatility": 1, "regime": n_regimes, "sltp": 2}


class _Head(nn.Module):
    def __init__(self, width: int, out: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(width, width), nn.GELU(), nn.Dropout(dropout), nn.Linear(width, out)
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)  # type: ignore[no-any-return]


class EnhancedHybridModel(nn.Module):
    """The multi-head sequence model.

    Args:
        n_features: features per bar (the feature spec's column count).
        spec: network shape and the heads switched on.
        n_regimes: regime classes (the label spec's regime count).

    ``forward(x)`` takes float32 ``(batch, seq_len, n_features)`` and returns a dict with one
    tensor per active head: ``signal`` logits ``(batch, 3)``, ``volatility`` multiplier of
    sigma ``(batch,)`` (> 0), ``regime`` logits ``(batch, n_regimes)``, ``sltp``
    ``(batch, 2)`` multiples of sigma (> 0; column 0 the stop, 1 the target, for a long).
    """

    def __init__(self, n_features: int, spec: NetworkSpec, *, n_regimes: int = 4) -> None:
        super().__init__()
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        self.n_features = n_features
        self.spec = spec
        self.heads_on = spec.heads.active
        self.conv = nn.Conv1d(
            n_features,
            spec.conv_channels,
            kernel_size=spec.conv_kernel,
            stride=spec.conv_stride,
            padding=spec.conv_kernel // 2,
        )
        self.act = nn.GELU()
        self.drop = nn.Dropout(spec.dropout)
        rnn_cls = nn.GRU if spec.rnn == "gru" else nn.LSTM
        self.rnn = rnn_cls(
            spec.conv_channels,
            spec.hidden,
            num_layers=spec.layers,
            batch_first=True,
            dropout=spec.dropout if spec.layers > 1 else 0.0,
        )
        self.attention = (
            nn.Sequential(
                nn.Linear(spec.hidden, spec.hidden // 2 or 1),
                nn.Tanh(),
                nn.Linear(spec.hidden // 2 or 1, 1),
            )
            if spec.attention
            else None
        )
        widths = head_widths(n_regimes)
        self.heads = nn.ModuleDict(
            {name: _Head(spec.hidden, widths[name], spec.dropout) for name in self.heads_on}
        )
        for name in ("volatility", "sltp"):
            if name in self.heads:
                head = self.heads[name]
                assert isinstance(head, _Head)
                last = head.net[-1]
                assert isinstance(last, nn.Linear)
                nn.init.constant_(last.bias, _SOFTPLUS_ONE)

    def encode(self, x: Tensor) -> Tensor:
        """The shared representation ``z`` of shape ``(batch, hidden)``."""
        h = self.drop(self.act(self.conv(x.transpose(1, 2)))).transpose(1, 2)
        out, _ = self.rnn(h)
        if self.attention is None:
            return out[:, -1]  # type: ignore[no-any-return]
        weights = torch.softmax(self.attention(out).squeeze(-1), dim=1)
        return (out * weights.unsqueeze(-1)).sum(dim=1)  # type: ignore[no-any-return]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Raw head outputs (logits for the classifiers, positive multiples for the rest)."""
        z = self.drop(self.encode(x))
        out: dict[str, Tensor] = {}
        for name in self.heads_on:
            y = self.heads[name](z)
            if name == "volatility":
                y = nn.functional.softplus(y.squeeze(-1)) + 1e-4
            elif name == "sltp":
                y = nn.functional.softplus(y) + 1e-4
            out[name] = y
        return out
