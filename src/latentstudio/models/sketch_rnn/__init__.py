"""sketch-rnn (Ha & Eck 2017): bidirectional-LSTM encoder, GMM decoder, KL annealing, sampling."""

from latentstudio.models.sketch_rnn.config import SketchRNNConfig
from latentstudio.models.sketch_rnn.mixture import StrokeMixture
from latentstudio.models.sketch_rnn.model import Sketches, SketchRNN, kl_weight

__all__ = ["SketchRNN", "SketchRNNConfig", "Sketches", "StrokeMixture", "kl_weight"]
