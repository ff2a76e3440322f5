"""Configuration of the first-stage VAE."""

from __future__ import annotations

from dataclasses import dataclass

from latentstudio.config import Config, require

DECODERS = ("gaussian", "bernoulli")
CONDITIONS = ("none", "class", "attributes")


@dataclass(frozen=True)
class VAEConfig(Config):
    """Dai & Wipf ResNet VAE (SPEC section 1).

    Attributes:
        image_channels: C of the ``[N, C, H, W]`` input (1 grey, 3 RGB).
        image_size: H = W in pixels; a power of two >= 4 (32 for MNIST padded / CIFAR, 64 CelebA).
        latent_dim: size of z (64 CIFAR-10, 128 CelebA in the paper).
        base_dim: channels at full resolution; doubles per halving, capped at 1024.
        num_scale: encoder resolutions (3 for 32x32, 4 for 64x64).
        block_per_scale: residual blocks per scale (thesis 1, Dai & Wipf 2).
        depth_per_block: (BN, ReLU, conv) layers per residual block.
        fc_dim: width of the dense residual block after global pooling.
        decoder: ``"gaussian"`` (learned-gamma Gaussian, SPEC loss) or ``"bernoulli"`` (BCE).
        learn_gamma: learn log gamma (stored as one scalar) or keep it fixed.
        gamma_init: initial (or fixed) gamma; the paper initialises log gamma = 0, i.e. gamma = 1.
        beta: weight of the KL term (1 = the ELBO).
        condition: ``"none"``, ``"class"`` (one-hot) or ``"attributes"`` (+-1 vector).
        cond_dim: size of the condition vector (number of classes, 40 for CelebA); 0 if none.
    """

    image_channels: int = 1
    image_size: int = 32
    latent_dim: int = 64
    base_dim: int = 64
    num_scale: int = 3
    block_per_scale: int = 1
    depth_per_block: int = 2
    fc_dim: int = 512
    decoder: str = "gaussian"
    learn_gamma: bool = True
    gamma_init: float = 1.0
    beta: float = 1.0
    condition: str = "none"
    cond_dim: int = 0

    def __post_init__(self) -> None:
        require(self.image_channels in (1, 3), "image_channels", f"must be 1 or 3, got {self.image_channels}")
        s = self.image_size
        require(s >= 4 and (s & (s - 1)) == 0, "image_size", f"must be a power of two >= 4, got {s}")
        require(self.latent_dim >= 1, "latent_dim", f"must be >= 1, got {self.latent_dim}")
        require(self.base_dim >= 1, "base_dim", f"must be >= 1, got {self.base_dim}")
        require(
            1 <= self.num_scale and 2 ** (self.num_scale - 1) <= s,
            "num_scale",
            f"must be in 1..{s.bit_length() - 1} for image_size {s}, got {self.num_scale}",
        )
        require(self.block_per_scale >= 1, "block_per_scale", "must be >= 1")
        require(self.depth_per_block >= 1, "depth_per_block", "must be >= 1")
        require(self.fc_dim >= 1, "fc_dim", "must be >= 1")
        require(self.decoder in DECODERS, "decoder", f"must be one of {DECODERS}, got {self.decoder!r}")
        require(self.gamma_init > 0, "gamma_init", f"must be > 0, got {self.gamma_init}")
        require(self.beta >= 0, "beta", f"must be >= 0, got {self.beta}")
        require(self.condition in CONDITIONS, "condition", f"must be one of {CONDITIONS}, got {self.condition!r}")
        if self.condition == "none":
            require(self.cond_dim == 0, "cond_dim", "must be 0 when condition is 'none'")
        else:
            require(self.cond_dim >= 1, "cond_dim", f"must be >= 1 for condition {self.condition!r}")
