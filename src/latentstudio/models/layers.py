"""Residual building blocks of the Dai & Wipf (2019) ResNet VAE.

A residual block is ``depth_per_block`` x (batch-norm -> ReLU -> layer) plus an identity shortcut
(a 1x1 conv / dense projection when the width changes). A "scale block" is ``block_per_scale``
residual blocks at one resolution (Dai & Wipf, arXiv:1903.05789, appendix; their public code).
"""

from __future__ import annotations

import torch
from torch import nn


class ResBlock2d(nn.Module):
    """``x: [N, in_dim, H, W] -> [N, out_dim, H, W]``: (BN, ReLU, 3x3 conv) x depth + shortcut."""

    def __init__(self, in_dim: int, out_dim: int, depth: int = 2, kernel_size: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(depth):
            layers += [nn.BatchNorm2d(dim), nn.ReLU(), nn.Conv2d(dim, out_dim, kernel_size, padding=kernel_size // 2)]
            dim = out_dim
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Identity() if in_dim == out_dim else nn.Conv2d(in_dim, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class ResBlockFC(nn.Module):
    """``x: [N, in_dim] -> [N, out_dim]``: (BN, ReLU, dense) x depth + shortcut."""

    def __init__(self, in_dim: int, out_dim: int, depth: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(depth):
            layers += [nn.BatchNorm1d(dim), nn.ReLU(), nn.Linear(dim, out_dim)]
            dim = out_dim
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Identity() if in_dim == out_dim else nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


def scale_block(in_dim: int, out_dim: int, block_per_scale: int, depth_per_block: int) -> nn.Sequential:
    """``block_per_scale`` conv residual blocks; the first maps ``in_dim`` to ``out_dim``."""
    return nn.Sequential(
        *[ResBlock2d(in_dim if i == 0 else out_dim, out_dim, depth_per_block) for i in range(block_per_scale)]
    )


def scale_fc_block(in_dim: int, out_dim: int, block_per_scale: int, depth_per_block: int) -> nn.Sequential:
    """``block_per_scale`` dense residual blocks; the first maps ``in_dim`` to ``out_dim``."""
    return nn.Sequential(
        *[ResBlockFC(in_dim if i == 0 else out_dim, out_dim, depth_per_block) for i in range(block_per_scale)]
    )
