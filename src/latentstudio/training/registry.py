"""Trainers by model family: ``TRAINERS.get(family)(spec, *, runs_root, resume, progress, dry_run, ...)``.

Each trainer takes a (partial) run-config dict in its family's ``run.json`` layout, writes a numbered
run folder (``runs/00003-<family>-<data>/``) and returns a result with ``run_dir`` and ``model_dir``
(or the resolved config under ``dry_run``). Lightning is imported only when training starts.
"""

from __future__ import annotations

from latentstudio.registry import Registry
from latentstudio.training import draw, fit, sketch_rnn, stylegan2

TRAINERS: Registry = Registry("trainer")
TRAINERS.register("two-stage-vae")(fit.train_spec)
TRAINERS.register("draw")(draw.train_draw_spec)
TRAINERS.register("sketch-rnn")(sketch_rnn.train_spec)
TRAINERS.register("stylegan2")(stylegan2.train_spec)
