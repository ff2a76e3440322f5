"""Studies: resumable experiment grids that write ``results.jsonl`` and a markdown report.

:mod:`latentstudio.studies.runner` holds the shared machinery; each study is one module here
with a ``run_*`` function (Python API) and a ``latentstudio study NAME`` command.
"""
