"""Configuration of sketch-rnn (defaults = the reference implementation's defaults).

``parity`` selects, item by item, the paper's or the reference code's choice where the two differ
(see :data:`PARITY_ITEMS` and docs/sketch_rnn.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from latentstudio.config import Config, require
from latentstudio.models.sketch_rnn.cells import CELL_TYPES, MASK_MODES

KL_SCHEDULES = ("paper", "reference")
PARITY = ("paper", "reference")
#: What ``parity`` switches: item -> (``paper`` behaviour, ``reference`` behaviour).
PARITY_ITEMS: dict[str, tuple[str, str]] = {
    "output_bias_init": ("zeros", "Glorot-uniform, limit sqrt(3 / (6M + 3))"),
    "kl_schedule": ("w_KL (1 - (1 - eta_min) R^step): starts at 0.005",
                    "w_KL - (w_KL - eta_min) R^step: starts at 0.01"),
    "hyper_recurrent_dropout": ("recurrent dropout in the hyper cell too", "none in the hyper cell"),
    "hyper_scale_init": ("modulation scales start at 1.0", "modulation scales start at 0.1"),
    "drop_points": ("the next kept point absorbs a dropped offset (kept points stay)",
                    "the previous kept point moves onto the dropped point"),
    "reported_kl": ("raw L_KL", "max(L_KL, kl_tolerance)"),
    "temperature_sigma": ("sigma * sqrt(tau) (variance * tau)", "sigma * tau^2 (the reference sampler)"),
}


@dataclass(frozen=True)
class SketchRNNConfig(Config):
    """sketch-rnn (Ha & Eck 2017) architecture and loss.

    Defaults equal magenta's ``sketch_rnn`` defaults: encoder 256 units per direction, decoder
    512, ``latent_dim`` 128, 20 mixture components, recurrent dropout with keep probability 0.9,
    KL weight 0.5 annealed from 0.01 with rate 0.99995, KL floor 0.2.

    Attributes:
        max_seq_len: Nmax, the padded sequence length and the divisor of L_s and L_p. None (the
            default) means "the data's longest sketch": training resolves it from the stroke file
            (all splits, as the reference does) before the model is built and saves the number.
            A model needs a resolved value.
        parity: ``paper`` or ``reference``: which choice to make in each item of
            :data:`PARITY_ITEMS` (output-bias init, KL schedule start, HyperLSTM details, point
            dropping, reported KL, temperature rule).
        enc_hidden_size: encoder LSTM units per direction.
        dec_hidden_size: decoder units.
        latent_dim: size of z.
        num_mixture: M, bivariate Gaussians per step (the output layer has ``6 M + 3`` units).
        dec_model: decoder cell, ``lstm``, ``layer_norm`` or ``hyper`` (HyperLSTM).
        enc_model: encoder cell, ``lstm`` or ``layer_norm``.
        conditional: True: encoder + latent (VAE); False: decoder only (unconditional).
        recurrent_dropout: apply recurrent dropout (Semeniuta et al.) in encoder and decoder.
        recurrent_keep_prob: probability of KEEPING a candidate unit (0.9 = 10% dropped).
        use_input_dropout / input_dropout_prob: dropout on the decoder's per-step input
            ``[S_{i-1}, z]`` in training; ``input_dropout_prob`` is the probability of KEEPING an
            element (the reference's meaning; 0.9 drops 10%), a fresh mask each step. Off by default.
        use_output_dropout / output_dropout_prob: dropout on the decoder output ``h_i`` before the
            output layer (the recurrent state is not affected), keep probability as above. Off by default.
        dropout_mask: ``step`` (fresh mask per step, as the reference) or ``sequence``.
        hyper_size / hyper_embed_size: HyperLSTM's small cell and embedding sizes.
        forget_bias: constant added to the forget gates.
        kl_weight: w_KL, the final weight of the KL term.
        kl_eta_min: eta_min, the annealing start (paper) / the starting weight (reference).
        kl_decay_rate: R, the annealing rate per step.
        kl_schedule: ``paper``: ``w_KL (1 - (1 - eta_min) R^step)`` (Ha & Eck, eq. 6 and section 4);
            ``reference``: magenta's ``w_KL - (w_KL - eta_min) R^step``. Both reach w_KL. None (the
            default) follows ``parity``.
        kl_tolerance: KL_min, the floor of the KL averaged over latent dimensions.
        log_eps: epsilon inside the log of the mixture density (``-log(p + eps)``, as the reference).
        sigma_min: floor of the mixture standard deviations (normalised units).
        rho_max: |rho| is clamped to this value below 1.
        rnn_impl: ``fused`` (sequence kernel with a hand-written backward) or ``loop`` (the
            straightforward per-step cells; the same function, for comparison).
    """

    max_seq_len: int | None = None
    parity: str = "paper"
    enc_hidden_size: int = 256
    dec_hidden_size: int = 512
    latent_dim: int = 128
    num_mixture: int = 20
    dec_model: str = "lstm"
    enc_model: str = "lstm"
    conditional: bool = True
    recurrent_dropout: bool = True
    recurrent_keep_prob: float = 0.9
    use_input_dropout: bool = False
    input_dropout_prob: float = 0.9
    use_output_dropout: bool = False
    output_dropout_prob: float = 0.9
    dropout_mask: str = "step"
    hyper_size: int = 256
    hyper_embed_size: int = 32
    forget_bias: float = 1.0
    kl_weight: float = 0.5
    kl_eta_min: float = 0.01
    kl_decay_rate: float = 0.99995
    kl_schedule: str | None = None
    kl_tolerance: float = 0.2
    log_eps: float = 1e-6
    sigma_min: float = 1e-4
    rho_max: float = 0.99999
    rnn_impl: str = "fused"

    def __post_init__(self) -> None:
        require(self.max_seq_len is None or (isinstance(self.max_seq_len, int) and self.max_seq_len >= 1),
                "max_seq_len", f"must be an int >= 1 or null (the data's longest sketch), got {self.max_seq_len!r}")
        require(self.parity in PARITY, "parity", f"must be one of {PARITY}, got {self.parity!r}")
        for name in ("input_dropout_prob", "output_dropout_prob"):
            require(0.0 < getattr(self, name) <= 1.0, name,
                    f"is the probability of KEEPING an element, in (0, 1] (0.9 drops 10%), got {getattr(self, name)}")
        for name in ("enc_hidden_size", "dec_hidden_size", "latent_dim", "num_mixture",
                     "hyper_size", "hyper_embed_size"):
            require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        require(self.dec_model in CELL_TYPES, "dec_model", f"must be one of {CELL_TYPES}, got {self.dec_model!r}")
        require(self.enc_model in ("lstm", "layer_norm"), "enc_model", f"must be 'lstm' or 'layer_norm', got {self.enc_model!r}")
        require(0.0 < self.recurrent_keep_prob <= 1.0, "recurrent_keep_prob",
                f"is the probability of KEEPING a unit, in (0, 1] (0.9 drops 10%), got {self.recurrent_keep_prob}")
        require(self.dropout_mask in MASK_MODES, "dropout_mask", f"must be one of {MASK_MODES}")
        require(self.kl_weight >= 0, "kl_weight", "must be >= 0")
        require(0.0 <= self.kl_eta_min <= 1.0, "kl_eta_min", "must be in [0, 1]")
        require(0.0 < self.kl_decay_rate <= 1.0, "kl_decay_rate", "must be in (0, 1]")
        require(self.kl_schedule is None or self.kl_schedule in KL_SCHEDULES, "kl_schedule",
                f"must be one of {KL_SCHEDULES} or null (follows parity)")
        require(self.kl_tolerance >= 0, "kl_tolerance", "must be >= 0")
        require(self.log_eps >= 0, "log_eps", "must be >= 0")
        require(self.sigma_min > 0, "sigma_min", "must be > 0")
        require(0.0 < self.rho_max < 1.0, "rho_max", "must be in (0, 1)")
        require(self.rnn_impl in ("fused", "loop"), "rnn_impl", "must be 'fused' or 'loop'")

    @property
    def reference(self) -> bool:
        """True when ``parity`` is ``reference``."""
        return self.parity == "reference"

    @property
    def schedule(self) -> str:
        """The KL schedule in effect: ``kl_schedule`` if set, else ``parity``'s."""
        return self.kl_schedule if self.kl_schedule is not None else self.parity

    @property
    def input_keep_prob(self) -> float:
        """Keep probability of the decoder-input dropout (1.0 when it is off)."""
        return self.input_dropout_prob if self.use_input_dropout else 1.0

    @property
    def output_keep_prob(self) -> float:
        """Keep probability of the decoder-output dropout (1.0 when it is off)."""
        return self.output_dropout_prob if self.use_output_dropout else 1.0

    @property
    def keep_prob(self) -> float:
        """Effective recurrent keep probability (1.0 when recurrent dropout is off)."""
        return self.recurrent_keep_prob if self.recurrent_dropout else 1.0

    @property
    def output_size(self) -> int:
        """``6 M + 3``: mixture logits, means, log-sds, correlations and 3 pen logits."""
        return 6 * self.num_mixture + 3
