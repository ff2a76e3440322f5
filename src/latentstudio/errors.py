"""Exceptions raised by latentstudio.

Every error a user can cause derives from :class:`LatentStudioError`; its message names the
file, field or option at fault and says how to fix it. The CLI turns these into a one-line
``Error: ...`` message and exit status 1, never a traceback.
"""

from __future__ import annotations


class LatentStudioError(Exception):
    """Base class of user-facing errors (bad input, missing files, refused overwrites)."""


class ConfigError(LatentStudioError, ValueError):
    """A configuration field has an invalid value or an unknown name."""


class DataError(LatentStudioError):
    """A dataset is missing, partial, unreadable or has the wrong shape/dtype."""


class ShapeError(LatentStudioError, ValueError):
    """A tensor crossing a module boundary has the wrong shape or dtype."""


class RunExistsError(LatentStudioError, FileExistsError):
    """Refused to overwrite an existing run directory or file without an explicit flag."""


class CheckpointError(LatentStudioError):
    """A model directory or training checkpoint is missing, incomplete or not loadable."""


class NonFiniteLossError(LatentStudioError, FloatingPointError):
    """Training produced a NaN/inf loss; the last good checkpoint is kept untouched."""


class ExtractorWeightsMissing(LatentStudioError, FileNotFoundError):
    """Pretrained feature-extractor weights (e.g. FID Inception) are not on disk."""


class UnknownNameError(LatentStudioError, KeyError):
    """A registry lookup (dataset, model, sampler, metric) used an unknown name."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class CapabilityError(LatentStudioError):
    """A model family lacks the requested capability (e.g. ``encode`` on a GAN); the message names the
    alternative (e.g. projection)."""
