"""DRAW's read and write operations: without attention, and with the Gaussian filterbank attention.

Selective attention of Gregor et al. (2015), section 3.2. An N x N grid of Gaussian filters is
placed on an A x B image (A = width, B = height) by five parameters emitted from the decoder state:

    (g~X, g~Y, log sigma^2, log delta~, log gamma) = W(h_dec)                         (eq. 21)
    gX = (A + 1) / 2 (g~X + 1),  gY = (B + 1) / 2 (g~Y + 1),  delta = (max(A, B) - 1) / (N - 1) delta~
    mu_X^i = gX + (i - N/2 - 0.5) delta,  mu_Y^j = gY + (j - N/2 - 0.5) delta           (eq. 19-20)
    F_X[i, a] = exp(-(a - mu_X^i)^2 / (2 sigma^2)) / Z_X,  F_Y[j, b] likewise             (eq. 25-26)
    read(x, x_hat, h_dec) = [gamma F_Y x F_X^T, gamma F_Y x_hat F_X^T]                    (eq. 27)
    write(h_dec) = 1 / gamma^ F^_Y^T w F^_X,  w = W(h_dec) an N x N patch                  (eq. 28-29)

The paper counts pixels and filters from 1; here both count from 0 (a = 0..A-1, i = 0..N-1), so
the centre is shifted by one pixel: ``gX = (A + 1) / 2 (g~X + 1) - 1`` and
``mu_X^i = gX + (i - (N - 1) / 2) delta``, which is the same grid placed on the same pixels.
Z_X normalises each filter to sum 1 over the image (a tiny floor avoids 0/0 for filters far
outside it). Everything is differentiable in the five parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from latentstudio.errors import ShapeError

#: Floor of the filter normaliser Z (a filter entirely outside the image reads zeros).
Z_EPS = 1e-8


@dataclass
class Window:
    """Attention parameters of a batch, all ``float [N]`` in pixel units (0-based coordinates).

    Attributes:
        gx, gy: grid centre (x = column, y = row).
        delta: stride between neighbouring filter centres.
        sigma2: isotropic variance of every Gaussian filter.
        gamma: intensity (read: multiplies the patch; write: divides it).
        n: N of the N x N grid.
    """

    gx: torch.Tensor
    gy: torch.Tensor
    delta: torch.Tensor
    sigma2: torch.Tensor
    gamma: torch.Tensor
    n: int

    def stack(self) -> torch.Tensor:
        """``float [batch, 5]``: (gx, gy, delta, sigma2, gamma)."""
        return torch.stack([self.gx, self.gy, self.delta, self.sigma2, self.gamma], dim=-1)

    def box(self) -> torch.Tensor:
        """Extent of the filter centres ``float [batch, 4]``: (x0, y0, x1, y1) in pixels (may lie outside)."""
        half = (self.n - 1) / 2 * self.delta
        return torch.stack([self.gx - half, self.gy - half, self.gx + half, self.gy + half], dim=-1)


def filterbank(centre: torch.Tensor, delta: torch.Tensor, sigma2: torch.Tensor, n: int, size: int) -> torch.Tensor:
    """One axis of the Gaussian filterbank (paper eq. 19-20 and 25-26, 0-based indices).

    Args:
        centre: ``float [B]`` grid centre g (pixels, 0-based).
        delta: ``float [B]`` stride.
        sigma2: ``float [B]`` filter variance (> 0).
        n: N filters.
        size: pixels along the axis (A or B).

    Returns:
        ``float [B, n, size]``: row i is ``exp(-(a - mu^i)^2 / (2 sigma2))`` normalised to sum 1 over a,
        with ``mu^i = centre + (i - (n - 1) / 2) delta``.
    """
    i = torch.arange(n, device=centre.device, dtype=centre.dtype)
    a = torch.arange(size, device=centre.device, dtype=centre.dtype)
    mu = centre[:, None] + (i - (n - 1) / 2)[None, :] * delta[:, None]  # [B, n]
    f = torch.exp(-((a[None, None, :] - mu[:, :, None]) ** 2) / (2 * sigma2[:, None, None]))
    return f / f.sum(dim=-1, keepdim=True).clamp_min(Z_EPS)


def window_from_params(params: torch.Tensor, height: int, width: int, n: int) -> Window:
    """Map the five raw outputs of the attention layer to a :class:`Window` (paper eq. 21-24).

    Args:
        params: ``float [B, 5]`` = (g~X, g~Y, log sigma^2, log delta~, log gamma).
        height, width: B and A of the image.
        n: N.
    """
    if params.ndim != 2 or params.shape[1] != 5:
        raise ShapeError(f"attention params: expected [B, 5], got {list(params.shape)}")
    gx_, gy_, log_sigma2, log_delta_, log_gamma = params.unbind(dim=1)
    gx = (width + 1) / 2 * (gx_ + 1) - 1
    gy = (height + 1) / 2 * (gy_ + 1) - 1
    delta = (max(width, height) - 1) / max(n - 1, 1) * torch.exp(log_delta_)
    return Window(gx=gx, gy=gy, delta=delta, sigma2=torch.exp(log_sigma2), gamma=torch.exp(log_gamma), n=n)


def filterbanks(window: Window, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(F_X [B, N, width], F_Y [B, N, height])`` of a window."""
    fx = filterbank(window.gx, window.delta, window.sigma2, window.n, width)
    fy = filterbank(window.gy, window.delta, window.sigma2, window.n, height)
    return fx, fy


def read_patch(x: torch.Tensor, fx: torch.Tensor, fy: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``gamma F_Y x F_X^T`` per channel: ``x [B, C, H, W] -> [B, C, N, N]`` (paper eq. 27)."""
    b, c, h, w = x.shape
    xf = (x.reshape(b, c * h, w) @ fx.transpose(1, 2)).view(b, c, h, -1)  # x F_X^T, one product per example
    return gamma[:, None, None, None] * (fy[:, None] @ xf)


def write_patch(w: torch.Tensor, fx: torch.Tensor, fy: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``F_Y^T w F_X / gamma`` per channel: ``w [B, C, N, N] -> [B, C, H, W]`` (paper eq. 29)."""
    return (fy[:, None].transpose(-1, -2) @ w @ fx[:, None]) / gamma[:, None, None, None]


def init_window_layer(layer: nn.Linear, height: int, width: int, n: int, *, write: bool = False) -> None:
    """Start a window layer at a blurred view of the whole image (our choice; the paper gives no init).

    The bias places the grid at the image centre (g~ = 0) with the N filters spaced ``max(A, B) / N``
    apart, i.e. ``delta~ = (max(A, B) / N) * (N - 1) / (max(A, B) - 1)``, each with standard deviation
    ``delta / 2``, so that the first read is an N x N average of the image and the first write spreads
    its patch over the canvas. Read intensity starts at gamma = 1. Each normalised filter spreads a
    patch value over about ``delta^2`` pixels, so the write intensity starts at ``gamma^ = 1 / delta^2``
    (unit gain: a constant patch w adds about w to every canvas logit it covers); with gamma^ = 1 the
    first writes would be ~delta^2 times weaker than a dense write. The weights keep PyTorch's default
    initialisation, so windows move with h_dec from the first step.
    """
    size = max(height, width)
    delta = size / n
    delta_tilde = delta * max(n - 1, 1) / max(size - 1, 1)
    log_gamma = -2 * math.log(delta) if write else 0.0
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.0, 0.0, 2 * math.log(delta / 2), math.log(delta_tilde), log_gamma]))


class AttentionRead(nn.Module):
    """Read with attention: ``(x, x_hat, h_dec) -> ([B, 2 C N^2], Window)``.

    Everything it reads changes from step to step (``static_dim = 0``, :meth:`varying` is the read).

    Args:
        channels, height, width: image shape.
        n: N of the read patch.
        dec_dim: size of h_dec.
    """

    #: leading columns of the read that are the same at every step (none: the window moves)
    static_dim = 0

    def __init__(self, channels: int, height: int, width: int, n: int, dec_dim: int) -> None:
        super().__init__()
        self.height, self.width, self.n = height, width, n
        self.params = nn.Linear(dec_dim, 5)
        init_window_layer(self.params, height, width, n)
        self.out_dim = 2 * channels * n * n

    def static(self, x: torch.Tensor) -> torch.Tensor:
        """The part of the read that does not change over the steps: empty, ``[B, 0]``."""
        return x.new_zeros(x.shape[0], 0)

    def varying(self, x: torch.Tensor, x_hat: torch.Tensor, h_dec: torch.Tensor) -> tuple[torch.Tensor, Window]:
        """The part of the read that changes from step to step: the whole read."""
        return self(x, x_hat, h_dec)

    def forward(self, x: torch.Tensor, x_hat: torch.Tensor, h_dec: torch.Tensor) -> tuple[torch.Tensor, Window]:
        win = window_from_params(self.params(h_dec), self.height, self.width, self.n)
        fx, fy = filterbanks(win, self.height, self.width)
        r = read_patch(torch.cat([x, x_hat], dim=1), fx, fy, win.gamma)  # both images in one product
        return r.flatten(1), win


class AttentionWrite(nn.Module):
    """Write with attention: ``h_dec -> ([B, C, H, W] canvas update, Window)``; the N x N patch and the
    window come from two linear layers of h_dec."""

    def __init__(self, channels: int, height: int, width: int, n: int, dec_dim: int) -> None:
        super().__init__()
        self.channels, self.height, self.width, self.n = channels, height, width, n
        self.params = nn.Linear(dec_dim, 5)
        init_window_layer(self.params, height, width, n, write=True)
        self.patch = nn.Linear(dec_dim, channels * n * n)

    def forward(self, h_dec: torch.Tensor) -> tuple[torch.Tensor, Window]:
        win = window_from_params(self.params(h_dec), self.height, self.width, self.n)
        fx, fy = filterbanks(win, self.height, self.width)
        w = self.patch(h_dec).view(-1, self.channels, self.n, self.n)
        return write_patch(w, fx, fy, win.gamma), win


class PlainRead(nn.Module):
    """Read without attention: ``[x, x_hat]`` flattened, ``[B, 2 C H W]`` (paper eq. 17).

    The first ``static_dim = C H W`` columns (the image x) are the same at every step, so DRAW
    projects them into the encoder once per pass (:meth:`static`) and only the error image
    (:meth:`varying`) at each step.
    """

    def __init__(self, channels: int, height: int, width: int) -> None:
        super().__init__()
        self.static_dim = channels * height * width
        self.out_dim = 2 * self.static_dim

    def static(self, x: torch.Tensor) -> torch.Tensor:
        """The part of the read that does not change over the steps: x flattened, ``[B, C H W]``."""
        return x.flatten(1)

    def varying(self, x: torch.Tensor, x_hat: torch.Tensor, h_dec: torch.Tensor) -> tuple[torch.Tensor, None]:
        """The part of the read that changes from step to step: x_hat flattened, ``[B, C H W]``."""
        return x_hat.flatten(1), None

    def forward(self, x: torch.Tensor, x_hat: torch.Tensor, h_dec: torch.Tensor) -> tuple[torch.Tensor, None]:
        return torch.cat([self.static(x), self.varying(x, x_hat, h_dec)[0]], dim=1), None


class PlainWrite(nn.Module):
    """Write without attention: a dense layer of h_dec reshaped to the image, ``[B, C, H, W]`` (paper eq. 18)."""

    def __init__(self, channels: int, height: int, width: int, dec_dim: int) -> None:
        super().__init__()
        self.shape = (channels, height, width)
        self.dense = nn.Linear(dec_dim, channels * height * width)

    def forward(self, h_dec: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.dense(h_dec).view(-1, *self.shape), None
