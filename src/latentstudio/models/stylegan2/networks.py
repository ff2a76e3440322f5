"""StyleGAN2 networks in plain PyTorch (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN", arXiv:1912.04958): mapping network, skip-architecture synthesis network with
modulated/demodulated convolutions and noise inputs, residual discriminator with minibatch stddev.

No custom CUDA/C++ kernels: resampling (:func:`upfirdn2d`) and the grouped modulated convolution are
written with ``torch.nn.functional`` and run on CPU and GPU.

Parameter layout. Module and parameter names are those of the official PyTorch release
(stylegan2-ada-pytorch ``training/networks.py``), so its state dicts load with ``strict=True`` and
the TensorFlow / rosinality checkpoints map onto it one to one (see
:mod:`latentstudio.models.stylegan2.convert`)::

    mapping.fc{i}.weight [w_dim, in]     mapping.fc{i}.bias [w_dim]     mapping.w_avg [w_dim]
    mapping.embed.weight [w_dim, c_dim]  mapping.embed.bias [w_dim]      (class-conditional only; fc0 in = z_dim + w_dim)
    synthesis.b4.const [C, 4, 4]
    synthesis.b{r}.conv0 / conv1 : weight [O, I, 3, 3], bias [O], noise_strength [], noise_const [r, r],
                                   affine.weight [I, w_dim], affine.bias [I], resample_filter [4, 4]
    synthesis.b{r}.torgb         : weight [3, C, 1, 1], bias [3], affine.weight [C, w_dim], affine.bias [C]
    D: b{r}.fromrgb / conv0 / conv1 / skip, b4.conv, b4.fc, b4.out

Equalized learning rate (paper section B of StyleGAN, ProGAN): weights are stored as N(0, 1) (divided by
the lr multiplier) and scaled at run time by ``lr_multiplier / sqrt(fan_in)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from latentstudio.errors import CapabilityError, ConfigError, ShapeError
from latentstudio.io.images import to_float
from latentstudio.models.base import (
    DECODE,
    ENCODE,
    NLL,
    RECONSTRUCT,
    ConditionSpec,
    GenerativeModel,
    Knob,
    LatentSpace,
)
from latentstudio.models.registry import register_model
from latentstudio.models.stylegan2.config import StyleGAN2Config
from latentstudio.models.stylegan2.loss import StyleGAN2Loss
from latentstudio.types import Batch, LossOutput, check_images, check_shape

NOISE_MODES = ("const", "random", "none")
#: Minibatches between two lazy path-length regularisation steps (StyleGAN2 appendix B).
PL_INTERVAL = 4
LRELU_GAIN = math.sqrt(2.0)
RESAMPLE_TAPS = (1.0, 3.0, 3.0, 1.0)


# --------------------------------------------------------------------------------------------------
# Resampling and convolution primitives


def setup_filter(taps: Sequence[float] = RESAMPLE_TAPS) -> torch.Tensor:
    """Separable 2-D FIR filter ``float32 [k, k]``: the outer product of ``taps``, normalised to sum 1."""
    t = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(t, t)
    return f / f.sum()


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    *,
    up: int = 1,
    down: int = 1,
    pad: Sequence[int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with the FIR filter ``f``, downsample by decimation.

    Args:
        x: ``float [N, C, H, W]``.
        f: ``float [kh, kw]`` filter (applied as a true convolution, i.e. flipped; the default
            symmetric filter is unaffected).
        up / down: integer factors.
        pad: ``(x0, x1, y0, y1)`` padding after upsampling (negative values crop).
        gain: the filter is multiplied by ``gain`` (``up**2`` keeps the mean when upsampling).

    Returns:
        ``float [N, C, (H*up + y0 + y1 - kh + 1) // down, ...]`` (rounded up by the decimation).
    """
    n, c, h, w = x.shape
    px0, px1, py0, py1 = (int(p) for p in pad)
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    k = (f * gain).to(x.dtype).flip([0, 1])
    x = F.conv2d(x, k[None, None].expand(c, 1, *k.shape), groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """Upsample ``[N, C, H, W]`` by ``up`` with filter ``f`` (output ``[N, C, H*up, W*up]``)."""
    fw = f.shape[-1]
    p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
    return upfirdn2d(x, f, up=up, pad=(p0, p1, p0, p1), gain=up * up)


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    *,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    groups: int = 1,
) -> torch.Tensor:
    """2-D convolution (cross-correlation, as ``F.conv2d``) with optional 2x FIR up/downsampling.

    ``up=2``: transposed stride-2 convolution followed by the FIR filter (the paper's upsampling
    conv); ``down=2``: FIR filter followed by a stride-2 convolution (1x1 kernels: filter and
    decimate first). Same output sizes as the official implementation: ``H*up//down`` for
    ``padding = k // 2``.

    Args:
        x: ``float [N, groups*I, H, W]``; w: ``float [groups*O, I, kh, kw]``; f: ``float [4, 4]`` filter
            (required when resampling).
    """
    out_ch, in_per_group, kh, kw = w.shape
    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)
    if f is None:
        raise ValueError("conv2d_resample: a resampling filter is needed when up or down > 1")
    fw = f.shape[-1]
    p0 = p1 = padding
    if up > 1:
        p0 += (fw + up - 1) // 2
        p1 += (fw - up) // 2
    if down > 1:
        p0 += (fw - down + 1) // 2
        p1 += (fw - down) // 2
    if down > 1 and up == 1:
        if kh == 1 and kw == 1:
            x = upfirdn2d(x, f, down=down, pad=(p0, p1, p0, p1))
            return F.conv2d(x, w, groups=groups)
        x = upfirdn2d(x, f, pad=(p0, p1, p0, p1))
        return F.conv2d(x, w, stride=down, groups=groups)
    # up > 1: transposed convolution (weights [I, O] per group), then the filter
    wt = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
    wt = wt.reshape(groups * in_per_group, out_ch // groups, kh, kw)
    p0 -= kw - 1
    p1 -= kw - up
    pt = max(min(-p0, -p1), 0)
    x = F.conv_transpose2d(x, wt, stride=up, padding=pt, groups=groups)
    x = upfirdn2d(x, f, pad=(p0 + pt, p1 + pt, p0 + pt, p1 + pt), gain=up * up)
    if down > 1:
        x = upfirdn2d(x, f, down=down)
    return x


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None,
    *,
    lrelu: bool,
    gain: float = 1.0,
    clamp: float | None = None,
) -> torch.Tensor:
    """Add a per-channel bias (dim 1), apply leaky ReLU (slope 0.2) or identity, scale by ``gain``, clamp."""
    if b is not None:
        x = x + b.to(x.dtype).reshape([1, -1] + [1] * (x.ndim - 2))
    if lrelu:
        x = F.leaky_relu(x, 0.2)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    noise: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    fused: bool = True,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Modulated convolution with weight demodulation (StyleGAN2 paper, section 2.2, eqs. 1-3).

    Per sample i: ``w'_ijk = s_i,j * w_ijk`` (eq. 1, j = input channel) and, when ``demodulate``,
    ``w''_ijk = w'_ijk / sqrt(sum_{j,k} w'_ijk^2 + eps)`` (eq. 3), then an ordinary convolution of sample
    i with its own weights; ``noise`` is added to the result.

    Args:
        x: ``float [N, I, H, W]`` input features.
        weight: ``float [O, I, kh, kw]`` shared weights.
        styles: ``float [N, I]`` per-sample scales s.
        noise: ``float`` broadcastable to ``[N, O, H', W']`` (already multiplied by its strength) or None.
        up: 1, or 2 for the upsampling convolution.
        padding: spatial padding (``k // 2``).
        resample_filter: ``[4, 4]`` FIR filter for ``up = 2``.
        demodulate: apply eq. 3 (False for toRGB).
        fused: one grouped convolution with per-sample weights (default); False scales activations
            instead (``conv(x * s) * d``), which is faster for large training batches. Both are exact.

    Returns:
        ``float [N, O, H*up, W*up]``.

    Raises:
        ShapeError: ``x``, ``weight`` and ``styles`` disagree in batch or channel sizes.
    """
    n, in_ch, h, w_ = x.shape
    out_ch, w_in, kh, kw = weight.shape
    if w_in != in_ch or styles.shape != (n, in_ch):
        raise ShapeError(
            f"modulated_conv2d: x {list(x.shape)}, weight {list(weight.shape)} and styles {list(styles.shape)} "
            f"disagree (expected styles [{n}, {in_ch}] and weight [*, {in_ch}, k, k])"
        )
    dcoefs = None
    if demodulate or fused:
        wmod = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)  # [N, O, I, kh, kw]
        if demodulate:
            dcoefs = (wmod.square().sum(dim=[2, 3, 4]) + eps).rsqrt()  # [N, O]
    if not fused:
        x = x * styles.to(x.dtype).reshape(n, in_ch, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, out_ch, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x
    if dcoefs is not None:
        wmod = wmod * dcoefs.reshape(n, out_ch, 1, 1, 1)
    x = x.reshape(1, n * in_ch, h, w_)
    wmod = wmod.reshape(n * out_ch, in_ch, kh, kw).to(x.dtype)
    x = conv2d_resample(x, wmod, resample_filter, up=up, padding=padding, groups=n)
    x = x.reshape(n, out_ch, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Pixel norm: ``x / sqrt(mean(x^2, dim) + eps)`` (the mapping network's input normalisation)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# --------------------------------------------------------------------------------------------------
# Layers


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalized learning rate: ``y = act(x W^T * lr/sqrt(in) + b * lr)``.

    Parameters: ``weight [out, in]`` (init N(0, 1) / lr_multiplier), ``bias [out]`` (init ``bias_init``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        lrelu: bool = False,
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features, self.lrelu = in_features, out_features, lrelu
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        x = x.matmul(w.t())
        return bias_act(x, b, lrelu=self.lrelu, gain=LRELU_GAIN if self.lrelu else 1.0)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, lrelu={self.lrelu}"


class Conv2dLayer(nn.Module):
    """Convolution with equalized learning rate, optional FIR downsampling, bias and leaky ReLU (discriminator).

    Parameters: ``weight [O, I, k, k]``, ``bias [O]``; buffer ``resample_filter [4, 4]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        lrelu: bool = True,
        down: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.lrelu, self.down, self.conv_clamp = lrelu, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter())
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = LRELU_GAIN if lrelu else 1.0
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        x = conv2d_resample(x, w, self.resample_filter, down=self.down, padding=self.padding)
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, self.bias, lrelu=self.lrelu, gain=self.act_gain * gain, clamp=clamp)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x upsampling) + per-pixel noise + bias + leaky ReLU.

    Parameters: ``affine`` (w -> styles, bias init 1), ``weight [O, I, 3, 3]``, ``bias [O]``,
    ``noise_strength []`` (learned, init 0); buffers ``noise_const [r, r]`` and ``resample_filter``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        *,
        up: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.register_buffer("resample_filter", setup_filter())
        self.padding = 1
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused: bool = True,
                gain: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        styles = self.affine(w)
        noise = None
        if noise_mode == "random":
            r = self.resolution
            noise = torch.randn(x.shape[0], 1, r, r, device=x.device, generator=generator) * self.noise_strength
        elif noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, fused=fused)
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, self.bias, lrelu=True, gain=LRELU_GAIN * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to image channels without demodulation (the skip generator's output branch).

    Styles are scaled by ``1 / sqrt(in_channels)`` (equalized lr); parameters ``affine``, ``weight
    [C_img, I, 1, 1]``, ``bias [C_img]``.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return bias_act(x, self.bias, lrelu=False, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (const or upsampling conv0) -> conv1 -> toRGB, image upsampled.

    Consumes ``num_conv + num_torgb`` styles; the toRGB style is shared with the next block's first conv.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 *, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        self.register_buffer("resample_filter", setup_filter())
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1

    def forward(self, x, img, ws: torch.Tensor, noise_mode: str, fused: bool, generator=None):
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, 0], noise_mode, fused, generator=generator)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode, fused, generator=generator)
            x = self.conv1(x, ws[:, 1], noise_mode, fused, generator=generator)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, ws[:, self.num_conv], fused).to(torch.float32)
        img = y if img is None else img + y
        return x, img


# --------------------------------------------------------------------------------------------------
# Generator


class MappingNetwork(nn.Module):
    """z (and a class label) -> w: pixel norm, ``mapping_layers`` dense layers with leaky ReLU (lr multiplier
    0.01), broadcast to ``num_ws`` styles, optional truncation towards ``w_avg``.

    Class-conditional networks (``c_dim > 0``) also have ``embed``, a dense layer ``c_dim -> w_dim`` (lr
    multiplier 1, no activation); its output is pixel-normed and concatenated after the pixel-normed z,
    so ``fc0`` reads ``z_dim + w_dim`` features (the stylegan2-ada mapping network).

    Buffer ``w_avg [w_dim]``: running mean of w during training (decay ``w_avg_beta``).
    """

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws = config.z_dim, config.w_dim, config.num_ws
        self.c_dim = config.c_dim
        self.num_layers = config.mapping_layers
        self.w_avg_beta = config.w_avg_beta
        embed_features = config.w_dim if self.c_dim else 0
        if self.c_dim:
            self.embed = FullyConnectedLayer(self.c_dim, embed_features)
        features = [config.z_dim + embed_features] + [config.w_dim] * config.mapping_layers
        for i in range(config.mapping_layers):
            layer = FullyConnectedLayer(features[i], features[i + 1], lrelu=True,
                                        lr_multiplier=config.mapping_lr_multiplier)
            setattr(self, f"fc{i}", layer)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        *,
        update_w_avg: bool = False,
    ) -> torch.Tensor:
        """Map latents to styles.

        Args:
            z: ``float [N, z_dim]`` (standard normal draws).
            c: class-conditional networks: labels ``float [N, c_dim]`` (one-hot rows); unconditional
                networks: None (or an empty tensor).
            truncation_psi: ``w' = w_avg + psi (w - w_avg)``; 1 = no truncation, 0 = ``w_avg``.
            truncation_cutoff: truncate only the first ``cutoff`` styles (None: all).
            update_w_avg: update the running ``w_avg`` with this batch (training only).

        Returns:
            ``float [N, num_ws, w_dim]``.

        Raises:
            ShapeError: ``z`` is not ``[N, z_dim]``; a label for an unconditional network, or a conditional
                network's label missing or not ``[N, c_dim]``.
        """
        check_shape(z, [None, self.z_dim], "z")
        x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim:
            if c is None:
                raise ShapeError(f"this StyleGAN2 generator is class-conditional ({self.c_dim} classes): pass "
                                 f"c, one-hot labels [N, {self.c_dim}] (sample/sample_seeds: condition=CLASS)")
            check_shape(c, [z.shape[0], self.c_dim], "c")
            y = normalize_2nd_moment(self.embed(c.to(device=x.device, dtype=torch.float32)))
            x = torch.cat([x, y], dim=1)
        elif c is not None and c.numel() > 0:
            raise ShapeError("this StyleGAN2 generator is unconditional: pass c=None")
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_w_avg:
            with torch.no_grad():
                # float32 running mean also under bf16/fp16 autocast
                self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else int(truncation_cutoff)
            x[:, :cutoff] = self.w_avg.to(x.dtype).lerp(x[:, :cutoff], truncation_psi)
        return x


class SynthesisNetwork(nn.Module):
    """w+ -> image: a learned 4x4 constant, then one :class:`SynthesisBlock` per resolution 4..R
    (skip architecture: the toRGB outputs are upsampled and summed)."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = config.w_dim, config.resolution, config.img_channels
        self.block_resolutions = config.block_resolutions
        self.num_ws = config.num_ws
        for res in self.block_resolutions:
            in_ch = config.channels(res // 2) if res > 4 else 0
            block = SynthesisBlock(in_ch, config.channels(res), config.w_dim, res, config.img_channels,
                                   conv_clamp=config.conv_clamp)
            setattr(self, f"b{res}", block)

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        *,
        fused: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Render images from styles.

        Args:
            ws: ``float [N, num_ws, w_dim]`` (w broadcast, or a W+ latent).
            noise_mode: ``"const"`` (the stored per-layer noise, deterministic), ``"random"`` (fresh
                N(0, 1) noise, from ``generator`` when given) or ``"none"`` (no noise).
            fused: per-sample grouped convolutions (default: in eval mode) or activation scaling
                (default in training mode).

        Returns:
            ``float32 [N, img_channels, R, R]``, roughly in [-1, 1] (not clamped).

        Raises:
            ShapeError: wrong ``ws`` shape. ValueError: unknown ``noise_mode``.
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        check_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        fused = (not self.training) if fused is None else fused
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws = ws[:, w_idx : w_idx + block.num_conv + block.num_torgb]
            x, img = block(x, img, block_ws, noise_mode, fused, generator)
            w_idx += block.num_conv
        return img


#: Latents mapped per pass, and images synthesised per pass, when sampling (bounds memory).
MAP_BATCH, SYNTH_BATCH = 256, 16
#: The knobs the mapping applies (:meth:`Generator.to_space`): W and W+ latents carry their truncation.
TRUNCATION_KNOBS = ("truncation_psi", "truncation_cutoff")
_NO_ENCODER = ("StyleGAN2 has no encoder; project a photo into W+ instead: latentstudio project PHOTO "
               "--model MODEL (Python: latentstudio.studio.project)")


@register_model("stylegan2")
class Generator(GenerativeModel):
    """The StyleGAN2 generator: ``mapping`` (z -> w) and ``synthesis`` (w+ -> image).

    Attributes:
        z_dim, w_dim, num_ws, img_resolution, img_channels: sizes (``num_ws = 2 log2(R) - 2``).
        w_avg: ``float [w_dim]`` running mean of w (a buffer of ``mapping``), the truncation centre.

    ``G(z, truncation_psi=0.7)`` = ``G.synthesis(G.mapping(z, truncation_psi=0.7))``.

    Contract: latent spaces ``z [z_dim]``, ``w [w_dim]`` and ``w+ [num_ws, w_dim]`` (:meth:`to_space` maps z
    into the last two, with truncation); sampling knobs
    ``truncation_psi``, ``truncation_cutoff`` and ``noise_mode``; :meth:`sample_seeds` draws z exactly
    as the official ``generate.py`` (``np.random.RandomState(seed)``). Outputs ``uint8 [N, C, R, R]``
    with the official rounding (:func:`images_to_uint8`). Class-conditional generators (``c_dim > 0``,
    e.g. converted stylegan2-ada snapshots) have ``condition_spec`` ``class`` with ``c_dim`` classes:
    ``sample(n, condition=3)``, ``sample_seeds(seeds, condition=[...])`` (None: classes 0, 1, ... in turn).
    :meth:`loss` is the generator's adversarial objective against a discriminator attached with
    :meth:`attach_discriminator`; no encoder (photos are projected, see :mod:`latentstudio.studio`).
    """

    config_class = StyleGAN2Config
    output_kind: ClassVar[str] = "images"
    capabilities: ClassVar[frozenset[str]] = frozenset({DECODE})
    knobs: ClassVar[tuple[Knob, ...]] = (
        Knob("truncation_psi", 1.0, "truncation trick: w' = w_avg + psi (w - w_avg); 1 = none, 0 = the mean face"),
        Knob("truncation_cutoff", None, "truncate only the first N style inputs (default: all)", kind=int,
             minimum=0),
        Knob("noise_mode", "const", "synthesis noise: const (stored, deterministic), random or none", kind=str,
             choices=NOISE_MODES),
    )
    capability_hints: ClassVar[dict[str, str]] = {
        ENCODE: _NO_ENCODER,
        RECONSTRUCT: _NO_ENCODER,
        NLL: "a GAN defines no likelihood; evaluate it with fid, kid or ppl (latentstudio evaluate)",
    }

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = config
        self.z_dim, self.w_dim, self.num_ws = config.z_dim, config.w_dim, config.num_ws
        self.img_resolution, self.img_channels = config.resolution, config.img_channels
        self.c_dim = config.c_dim
        self.mapping = MappingNetwork(config)
        self.synthesis = SynthesisNetwork(config)
        self._adversary: tuple[StyleGAN2Loss, ...] = ()  # a tuple keeps D out of the state dict
        self._pl_interval = PL_INTERVAL

    @property
    def w_avg(self) -> torch.Tensor:
        """``float [w_dim]``: the tracked mean of w (``mapping.w_avg``)."""
        return self.mapping.w_avg

    @property
    def device(self) -> torch.device:
        return self.mapping.w_avg.device

    @property
    def condition_spec(self) -> ConditionSpec:
        """``class`` with ``c_dim`` classes for class-conditional generators, else none."""
        return ConditionSpec("class", self.c_dim) if self.c_dim else ConditionSpec()

    # ------------------------------------------------------------------ contract
    @classmethod
    def example_config(cls, **overrides: Any) -> StyleGAN2Config:
        base = {"resolution": 16, "img_channels": 1, "z_dim": 8, "w_dim": 8, "channel_base": 64, "channel_max": 8,
                "mapping_layers": 2}
        return StyleGAN2Config(**{**base, **overrides})

    def prepare_for_training(self) -> None:
        """Attach a fresh :class:`Discriminator` of the same config when none is attached.

        Raises:
            CapabilityError: a class-conditional generator (sampling only).
        """
        self._require_unconditional()
        if not self._adversary:
            self.attach_discriminator(Discriminator(self.config).to(self.device))

    def latent_spaces(self) -> tuple[LatentSpace, ...]:
        return (
            LatentSpace("z", (self.z_dim,), "N(0, I)", description="input latent"),
            LatentSpace("w", (self.w_dim,), "mapping(z), z ~ N(0, I)", description="style, one for every layer",
                        mapped_from="z", mapping_knobs=TRUNCATION_KNOBS),
            LatentSpace("w+", (self.num_ws, self.w_dim), "mapping(z), z ~ N(0, I), one row per style input",
                        description="one style per layer (what projection optimises)", mapped_from="z",
                        mapping_knobs=TRUNCATION_KNOBS, row_space="w"),
        )

    def to_space(self, z: torch.Tensor, space: str, *, condition: Any = None, **knobs: Any) -> torch.Tensor:
        """``z float [N, z_dim]`` mapped to ``w float32 [N, w_dim]`` or ``w+ float32 [N, num_ws, w_dim]`` (CPU),
        truncated towards ``w_avg`` by ``truncation_psi`` (0 gives ``w_avg``) for the first
        ``truncation_cutoff`` style rows; class-conditional generators map with the classes of ``condition``.
        ``noise_mode`` is checked and ignored (it acts at synthesis).

        Raises:
            CapabilityError: ``space`` is ``z`` (drawn, not mapped). ConfigError: an unknown space or knob;
                ``truncation_cutoff`` below ``num_ws`` for ``w`` (one style for every layer: use ``w+``).
            ShapeError: ``z`` is not ``[N, z_dim]``.
        """
        s = self.latent_space(space)
        if s.mapped_from is None:
            return super().to_space(z, space, condition=condition, **knobs)
        v = self.resolve_knobs(knobs)
        cut = v["truncation_cutoff"]
        if s.name == "w" and v["truncation_psi"] != 1 and cut is not None and cut < self.num_ws:
            raise ConfigError(f"truncation_cutoff={cut} truncates the first {cut} of {self.num_ws} style rows, and "
                              "w is one style for every row: map into w+ instead, or leave truncation_cutoff unset")
        x = torch.as_tensor(z, dtype=torch.float32)
        check_shape(x, [None, self.z_dim], "z")
        c = self.condition_spec.make(condition, x.shape[0])
        with torch.no_grad():
            ws = self.map_latents(x, v["truncation_psi"], cut, c=c).float().cpu()
        return ws[:, 0].contiguous() if s.name == "w" else ws

    def example_batch(self, n: int = 4, generator: torch.Generator | None = None) -> Batch:
        r, c = self.img_resolution, self.img_channels
        return Batch(torch.randint(0, 256, (n, c, r, r), generator=generator, dtype=torch.uint8))

    def map_latents(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                    batch_size: int = MAP_BATCH, c: torch.Tensor | None = None) -> torch.Tensor:
        """``z float [N, z_dim]`` (and, class-conditional generators, labels ``c float [N, c_dim]``) ->
        ``w+ float [N, num_ws, w_dim]`` (truncated), on the model's device."""
        if c is not None:
            check_shape(c, [z.shape[0], None], "c")
        return torch.cat([self.mapping(z[i : i + batch_size].to(self.device),
                                       None if c is None else c[i : i + batch_size].to(self.device),
                                       truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
                          for i in range(0, z.shape[0], batch_size)])

    def synthesize_images(self, ws: torch.Tensor, noise_mode: str = "const", batch_size: int | None = None,
                          generator: torch.Generator | None = None, progress: bool = False) -> torch.Tensor:
        """``w+ [N, num_ws, w_dim]`` -> images ``uint8 [N, C, R, R]`` on CPU, in batches (``generator`` draws
        the noise of ``noise_mode="random"``). ``batch_size`` defaults to ``SYNTH_BATCH`` up to 256 px, scaled
        down by pixel count above (1 at 1024 px, where each image in a batch adds ~0.6 GiB on CPU)."""
        batch_size = batch_size or max(1, min(SYNTH_BATCH, SYNTH_BATCH * 256**2 // self.img_resolution**2))
        out = []
        for i in tqdm(range(0, ws.shape[0], batch_size), disable=not progress, desc="synthesis", leave=False):
            img = self.synthesis(ws[i : i + batch_size].to(self.device), noise_mode=noise_mode, generator=generator)
            out.append(images_to_uint8(img).cpu())
        return torch.cat(out)

    def _images_from_z(self, z: torch.Tensor, *, truncation_psi: float, truncation_cutoff: int | None,
                       noise_mode: str, generator: torch.Generator | None,
                       c: torch.Tensor | None = None) -> torch.Tensor:
        ws = self.map_latents(z, truncation_psi, truncation_cutoff, c=c)
        noise_g = None
        if noise_mode == "random":
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            noise_g = torch.Generator(device=self.device).manual_seed(seed)
        return self.synthesize_images(ws, noise_mode, generator=noise_g)

    def _sample(self, n: int, *, generator: torch.Generator | None, condition: torch.Tensor | None,
                truncation_psi: float, truncation_cutoff: int | None, noise_mode: str) -> torch.Tensor:
        z = torch.randn(n, self.z_dim, generator=generator)
        return self._images_from_z(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                                   noise_mode=noise_mode, generator=generator, c=condition)

    def sample_seeds(self, seeds: Sequence[int], *, condition: Any = None, **knobs: Any) -> torch.Tensor:
        """One image per seed with the official rule ``z = np.random.RandomState(seed).randn(z_dim)``, so a
        seed gives the image of the official ``generate.py`` for the same weights (noise ``random`` draws
        its noise from a generator seeded with the first seed). Class-conditional generators take the
        class of every seed from ``condition`` (one int for all, a list of ints, or None: 0, 1, ... in
        turn), as the official ``--class``."""
        if len(seeds) == 0:
            return super().sample_seeds(seeds)
        v = self.resolve_knobs(knobs)
        c = self.condition_spec.make(condition, len(seeds))
        z = torch.cat([z_from_seed(s, self.z_dim) for s in seeds])
        with torch.no_grad():
            return self._images_from_z(z, generator=torch.Generator().manual_seed(int(seeds[0])), c=c, **v)

    def decode(self, z: torch.Tensor, *, space: str | None = None, condition: Any = None,
               generator: torch.Generator | None = None, **knobs: Any) -> torch.Tensor:
        """Images ``uint8 [N, C, R, R]`` of latents of ``space``: ``z [N, z_dim]`` (mapped and truncated;
        class-conditional generators map them with the classes of ``condition``), ``w [N, w_dim]`` or
        ``w+ [N, num_ws, w_dim]`` (truncated towards ``w_avg`` by ``truncation_psi``; the class is already
        in them)."""
        s = self.latent_space(space)
        v = self.resolve_knobs(knobs)
        x = torch.as_tensor(z, dtype=torch.float32)
        check_shape(x, [None, *s.shape], s.name)
        c = self.condition_spec.make(condition, x.shape[0])
        with torch.no_grad():
            if s.name == "z":
                return self._images_from_z(x, generator=generator, c=c, **v)
            ws = x[:, None].expand(-1, self.num_ws, -1) if s.name == "w" else x
            ws = ws.to(self.device)
            if v["truncation_psi"] != 1:
                cut = self.num_ws if v["truncation_cutoff"] is None else int(v["truncation_cutoff"])
                ws = ws.clone()
                ws[:, :cut] = self.w_avg.to(ws.dtype).lerp(ws[:, :cut], v["truncation_psi"])
            noise_g = None if generator is None or v["noise_mode"] != "random" else generator
            return self.synthesize_images(ws, v["noise_mode"], generator=noise_g)

    # ------------------------------------------------------------------ training
    def attach_discriminator(self, discriminator: nn.Module, *, pl_interval: int = PL_INTERVAL,
                             **loss_options: Any) -> StyleGAN2Loss:
        """Pair the generator with ``discriminator`` so that :meth:`loss` can be computed; ``loss_options``
        as :class:`~latentstudio.models.stylegan2.loss.StyleGAN2Loss`. Returns that loss object.

        Raises:
            CapabilityError: a class-conditional generator (sampling only).
        """
        self._require_unconditional()
        self._adversary = (StyleGAN2Loss(self, discriminator, **loss_options),)
        self._pl_interval = int(pl_interval)
        return self._adversary[0]

    def loss(self, batch: Batch, *, step: int = 0, generator: torch.Generator | None = None) -> LossOutput:
        """The generator's objective on one step (Karras et al. 2020): the non-saturating logistic loss
        ``softplus(-D(G(z)))`` for ``len(batch)`` draws of z, plus the lazy path-length penalty at the
        steps where ``step % pl_interval == 0`` (4 unless attached otherwise, as the paper).

        Args:
            batch: ``x`` real images ``uint8 [N, C, R, R]`` (only N is used by the generator's phase).

        Raises:
            CapabilityError: no discriminator attached (``latentstudio train stylegan2`` attaches one), or a
                class-conditional generator.
        """
        self._require_unconditional()
        if not self._adversary:
            raise CapabilityError("a StyleGAN2 generator trains against a discriminator: call "
                                  "attach_discriminator(D) first (latentstudio train stylegan2 does this)")
        adv = self._adversary[0]
        n = len(batch)
        z = torch.randn(n, self.z_dim, generator=generator, device=self.device)
        out = adv.g_main(z, generator)
        interval = self._pl_interval
        if adv.pl_weight > 0 and step % interval == 0:
            pl = adv.g_pl(torch.randn(n, self.z_dim, generator=generator, device=self.device), interval, generator)
            out = LossOutput(out.loss + pl.loss, {**out.terms, **pl.terms})
        return out

    def _require_unconditional(self) -> None:
        if self.c_dim:
            raise CapabilityError(f"this StyleGAN2 generator is class-conditional ({self.c_dim} classes): it samples "
                                  "(sample --condition CLASS) but is not trained or fine-tuned here")

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``z float [N, z_dim]`` (and labels ``c float [N, c_dim]`` for class-conditional generators) -> images
        ``float32 [N, C, R, R]`` in about [-1, 1] (see the two halves)."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, generator=generator)

    @torch.no_grad()
    def estimate_w_avg(self, n: int = 10_000, seed: int = 0, batch_size: int = 1000) -> torch.Tensor:
        """Set ``w_avg`` to the mean of w over ``n`` seeded z draws (for checkpoints that lack it; classes
        drawn uniformly for class-conditional generators); returns it."""
        g = torch.Generator(device="cpu").manual_seed(seed)
        total = torch.zeros(self.w_dim, dtype=torch.float64)
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            z = torch.randn(m, self.z_dim, generator=g).to(self.device)
            c = None
            if self.c_dim:
                c = F.one_hot(torch.randint(0, self.c_dim, (m,), generator=g), self.c_dim).float().to(self.device)
            total += self.mapping(z, c)[:, 0].double().sum(0).cpu()
        self.mapping.w_avg.copy_((total / n).to(self.mapping.w_avg))
        return self.w_avg


# --------------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(nn.Module):
    """Residual discriminator block: (fromRGB at the top) -> conv0 3x3 -> conv1 3x3 down, plus a 1x1
    downsampling skip; the two branches are summed with gains sqrt(1/2) each."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int,
                 *, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.register_buffer("resample_filter", setup_filter())
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, down=2, conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, lrelu=False, down=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv0(x)
        x = self.conv1(x, gain=math.sqrt(0.5))
        return y + x


class MinibatchStdLayer(nn.Module):
    """Appends the mean standard deviation over groups of samples as extra feature channels
    (ProGAN, Karras et al. 2018; StyleGAN2 uses groups of 4 and one channel).

    Sample i belongs to group ``i % (N / G)``; ``G = min(group_size, N)`` reduced to the largest
    divisor of N when N is not a multiple.
    """

    def __init__(self, group_size: int, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = math.gcd(min(self.group_size, n), n)
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch stddev -> conv 3x3 -> dense -> dense to one logit."""

    def __init__(self, in_channels: int, config: StyleGAN2Config) -> None:
        super().__init__()
        self.mbstd = MinibatchStdLayer(config.mbstd_group_size, config.mbstd_num_channels)
        self.conv = Conv2dLayer(in_channels + config.mbstd_num_channels, in_channels, 3, conv_clamp=config.conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * 16, in_channels, lrelu=True)
        self.out = FullyConnectedLayer(in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))


class Discriminator(nn.Module):
    """Residual StyleGAN2 discriminator: images ``float [N, C, R, R]`` in [-1, 1] -> logits ``float [N, 1]``."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = config
        self.img_resolution, self.img_channels = config.resolution, config.img_channels
        self.block_resolutions = [2**i for i in range(config.log2_resolution, 2, -1)]
        for res in self.block_resolutions:
            in_ch = config.channels(res) if res < config.resolution else 0
            block = DiscriminatorBlock(in_ch, config.channels(res), config.channels(res // 2), config.img_channels,
                                       conv_clamp=config.conv_clamp)
            setattr(self, f"b{res}", block)
        self.b4 = DiscriminatorEpilogue(config.channels(4), config)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``float [N, 1]`` (real > 0) of images ``float [N, C, R, R]`` in [-1, 1].

        Raises:
            ShapeError: wrong image shape.
        """
        r = self.img_resolution
        check_shape(img, [None, self.img_channels, r, r], "img")
        x = None
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)
        return self.b4(x)


# --------------------------------------------------------------------------------------------------
# Helpers


def z_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """The official generator's latent for ``seed``: ``np.random.RandomState(seed).randn(1, z_dim)`` as
    ``float32 [1, z_dim]`` (so a seed gives the same image as the official ``generate.py``)."""
    return torch.from_numpy(np.random.RandomState(int(seed)).randn(1, z_dim)).to(torch.float32)


def images_to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Generator output ``float [N, C, H, W]`` in [-1, 1] -> ``uint8 [N, C, H, W]`` with the official rule
    ``(x * 127.5 + 128).clamp(0, 255)`` truncated to an integer (in float32), i.e. ``floor(127.5 x + 128)``:
    ``127.5 x + 127.5`` rounded half up, not half to even. So converted official weights give the official
    PNGs byte for byte. NaNs become 0.
    """
    x = img.detach().to(torch.float32) * 127.5 + 128
    return torch.nan_to_num(x, nan=0.0).clamp(0, 255).to(torch.uint8)


def images_to_float(img_u8: torch.Tensor) -> torch.Tensor:
    """``uint8 [N, C, H, W]`` -> ``float32`` in [-1, 1] (the networks' image range)."""
    check_images(img_u8)
    return to_float(img_u8) * 2 - 1
