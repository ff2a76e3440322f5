"""The ``latentstudio`` command line (thin over :mod:`latentstudio.api`).

Modules that import torch or numpy (``latentstudio.api`` and most of the package) are imported inside the
commands, marked ``# lazy: imports torch``: ``latentstudio --help`` and option errors then answer in about
0.1 s instead of the 1.5 s torch takes to import.
"""
