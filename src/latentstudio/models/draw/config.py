"""Configuration of DRAW (Gregor et al. 2015, "DRAW: A Recurrent Neural Network For Image Generation")."""

from __future__ import annotations

from dataclasses import dataclass

from latentstudio.config import Config, require

DECODERS = ("bernoulli", "gaussian")
CONDITIONS = ("none", "class")
KL_REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class DRAWConfig(Config):
    """DRAW with or without the Gaussian filterbank attention (SPEC section 2).

    Attributes:
        image_channels: C of the ``[N, C, H, W]`` input (1 grey, 3 RGB).
        image_size: H = W in pixels (28 for MNIST without padding, 32 padded MNIST / CIFAR-10).
        steps: T, the number of glimpses / canvas updates (paper: 64 on MNIST).
        latent_dim: size of z_t at *each* step; the total latent size is ``steps * latent_dim``
            (paper: 100 per step on MNIST; the thesis keeps ``steps * latent_dim`` fixed when sweeping T).
        enc_dim / dec_dim: LSTM sizes of the encoder and decoder (paper: 256 each on MNIST).
        attention: True: read and write N x N Gaussian filterbank patches (paper eq. 19-22);
            False: read = [x, x_hat] (the whole image and error image), write = dense(h_dec).
        read_n / write_n: N of the read and write patches (paper MNIST: 2 and 5); ignored without attention.
        decoder: ``"bernoulli"`` (BCE of the final canvas, the paper's MNIST loss) or ``"gaussian"``
            (fixed-sd Gaussian, i.e. the MSE term: ``sum (x - x_hat)^2 / (2 gamma^2) + D log(gamma sqrt(2 pi))``).
        gamma: decoder standard deviation of the Gaussian decoder (fixed), in [0, 1] pixel units.
        kl_reduction: ``"sum"`` (the ELBO: L^z = sum_t KL_t, paper eq. 11) or ``"mean"`` (divide the
            KL sum by T, as the thesis does).
        condition: ``"none"`` or ``"class"`` (conditional DRAW: one-hot class concatenated to the encoder
            input and to z_t at the decoder input).
        cond_dim: number of classes for ``condition="class"`` (0 otherwise).
    """

    image_channels: int = 1
    image_size: int = 28
    steps: int = 16
    latent_dim: int = 10
    enc_dim: int = 256
    dec_dim: int = 256
    attention: bool = True
    read_n: int = 2
    write_n: int = 5
    decoder: str = "bernoulli"
    gamma: float = 0.1
    kl_reduction: str = "sum"
    condition: str = "none"
    cond_dim: int = 0

    def __post_init__(self) -> None:
        require(self.image_channels in (1, 3), "image_channels", f"must be 1 or 3, got {self.image_channels}")
        require(self.image_size >= 2, "image_size", f"must be >= 2 pixels, got {self.image_size}")
        require(self.steps >= 1, "steps", f"must be >= 1 (the number of DRAW time steps T), got {self.steps}")
        require(self.latent_dim >= 1, "latent_dim", f"must be >= 1 (latent size per step), got {self.latent_dim}")
        require(self.enc_dim >= 1, "enc_dim", f"must be >= 1, got {self.enc_dim}")
        require(self.dec_dim >= 1, "dec_dim", f"must be >= 1, got {self.dec_dim}")
        for name in ("read_n", "write_n"):
            n = getattr(self, name)
            require(
                1 <= n <= self.image_size,
                name,
                f"must be in 1..image_size ({self.image_size}) for an N x N patch, got {n}",
            )
        require(self.decoder in DECODERS, "decoder", f"must be one of {DECODERS}, got {self.decoder!r}")
        require(self.gamma > 0, "gamma", f"must be > 0 (decoder standard deviation), got {self.gamma}")
        require(
            self.kl_reduction in KL_REDUCTIONS,
            "kl_reduction",
            f"must be one of {KL_REDUCTIONS}, got {self.kl_reduction!r}",
        )
        require(self.condition in CONDITIONS, "condition", f"must be one of {CONDITIONS}, got {self.condition!r}")
        if self.condition == "none":
            require(self.cond_dim == 0, "cond_dim", "must be 0 when condition is 'none'")
        else:
            require(self.cond_dim >= 2, "cond_dim", f"must be >= 2 classes for condition 'class', got {self.cond_dim}")

    @property
    def total_latent_dim(self) -> int:
        """``steps * latent_dim``: the size of the whole latent z_{1:T}."""
        return self.steps * self.latent_dim
