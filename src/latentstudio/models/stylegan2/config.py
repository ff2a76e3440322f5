"""Configuration of the StyleGAN2 generator and discriminator (Karras et al. 2020, arXiv:1912.04958).

Channel counts follow the official rule ``channels(res) = min(channel_base // res, channel_max)``:
config-f (FFHQ 1024) uses ``channel_base = 32768, channel_max = 512`` (512 channels up to 64x64,
then 256, 128, 64, 32 at 1024x1024); the "paper256"/"paper512" training configurations of
stylegan2-ada use half and full width respectively. ``latentstudio.presets`` names these settings (family ``stylegan2``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from latentstudio.config import Config, require

MIN_RESOLUTION = 16
MAX_RESOLUTION = 1024


@dataclass(frozen=True)
class StyleGAN2Config(Config):
    """StyleGAN2 generator + discriminator architecture (config-f defaults at 256x256).

    Attributes:
        resolution: output side in pixels, a power of two in 16..1024.
        img_channels: 3 (RGB) or 1 (grey).
        z_dim: input latent width (512 in the paper).
        w_dim: intermediate latent (style) width (512).
        mapping_layers: dense layers of the mapping network (8 in the paper).
        mapping_lr_multiplier: learning-rate multiplier of the mapping network (0.01, equalized lr).
        w_avg_beta: decay of the running average of w tracked during training (0.995).
        channel_base / channel_max: feature maps at resolution r are ``min(channel_base // r, channel_max)``.
        conv_clamp: clamp activations to +-conv_clamp after each conv (stylegan2-ada networks use 256;
            original TF networks None).
        mbstd_group_size: minibatch-stddev group size of the discriminator (4; batch sizes not
            divisible by it use the largest common divisor).
        mbstd_num_channels: minibatch-stddev feature channels (1).
        c_dim: number of classes of a class-conditional generator (0: unconditional). The mapping
            network then embeds the one-hot label (``mapping.embed``, ``c_dim -> w_dim``), normalises it
            and concatenates it with the normalised z, as the stylegan2-ada networks do. Conditional
            generators sample and convert; they are not trained here.
    """

    resolution: int = 256
    img_channels: int = 3
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = None
    mbstd_group_size: int = 4
    mbstd_num_channels: int = 1
    c_dim: int = 0

    def __post_init__(self) -> None:
        r = self.resolution
        require(
            isinstance(r, int) and MIN_RESOLUTION <= r <= MAX_RESOLUTION and r & (r - 1) == 0,
            "resolution",
            f"must be a power of two in {MIN_RESOLUTION}..{MAX_RESOLUTION}, got {r!r}",
        )
        require(self.img_channels in (1, 3), "img_channels", f"must be 1 or 3, got {self.img_channels}")
        require(self.z_dim >= 1, "z_dim", f"must be >= 1, got {self.z_dim}")
        require(self.w_dim >= 1, "w_dim", f"must be >= 1, got {self.w_dim}")
        require(self.mapping_layers >= 1, "mapping_layers", f"must be >= 1, got {self.mapping_layers}")
        require(self.mapping_lr_multiplier > 0, "mapping_lr_multiplier", "must be > 0")
        require(0 <= self.w_avg_beta < 1, "w_avg_beta", f"must be in [0, 1), got {self.w_avg_beta}")
        require(self.channel_max >= 1, "channel_max", f"must be >= 1, got {self.channel_max}")
        require(
            self.channel_base // self.resolution >= 1,
            "channel_base",
            f"must be >= resolution ({self.resolution}) so every layer has a channel, got {self.channel_base}",
        )
        require(self.conv_clamp is None or self.conv_clamp > 0, "conv_clamp", "must be > 0 or null")
        require(self.mbstd_group_size >= 1, "mbstd_group_size", "must be >= 1")
        require(self.mbstd_num_channels >= 1, "mbstd_num_channels", "must be >= 1")
        require(isinstance(self.c_dim, int) and self.c_dim >= 0, "c_dim",
                f"must be an int >= 0 (0: unconditional), got {self.c_dim!r}")
        require(
            self.channels(4) % self.mbstd_num_channels == 0,
            "mbstd_num_channels",
            f"must divide the 4x4 channel count {self.channels(4)}",
        )

    @property
    def log2_resolution(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def block_resolutions(self) -> list[int]:
        """Generator block resolutions ``[4, 8, ..., resolution]``."""
        return [2**i for i in range(2, self.log2_resolution + 1)]

    @property
    def num_ws(self) -> int:
        """Style inputs of the synthesis network: ``2 * log2(resolution) - 2`` (18 at 1024, 14 at 256)."""
        return 2 * self.log2_resolution - 2

    def channels(self, res: int) -> int:
        """Feature maps at resolution ``res``: ``min(channel_base // res, channel_max)``."""
        return min(self.channel_base // res, self.channel_max)
