"""The ``latentstudio`` command line (thin over :mod:`latentstudio.api`)."""
