"""The sketch-rnn evaluator: test losses in nats (Ha & Eck 2017, eq. 5-6), raw and as the reference reports them.

Against the test split of the reference stroke data (default: the model's stroke file, normalised by the
model's scale factor) it records, each as one stamped line of ``metrics.jsonl``, and writes ``report.md``:

- raw values: ``l_r`` (L_R = L_s + L_p), ``l_s`` (offsets), ``l_p`` (pen states), the step sums divided by
  the padded length (the model's Nmax), and for conditional models ``l_kl`` (the raw KL per latent
  dimension) and ``kl_sum`` (KL per sketch);
- the reference's values: ``ref_l_r``, ``ref_l_s``, ``ref_l_p`` with the step sums (pen term over the first
  Nmax steps) divided by the data's Nmax (the file's longest sketch), and ``ref_l_kl`` =
  ``max(L_KL, kl_tolerance)`` per batch, averaged over batches (the reference's reported KL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from latentstudio.data.spec import DataSpec
from latentstudio.errors import DataError
from latentstudio.evaluation.common import data_spec_for
from latentstudio.evaluation.report import Recorder, records_table, trained_on, versions_line, write_report
from latentstudio.metrics.records import read_records

#: Result keys of :func:`stroke_losses` (nats; the paper's definitions).
KEY_RECON = "recon"
KEY_L_S = "l_s"
KEY_L_P = "l_p"
KEY_KL = "kl"
KEY_KL_SUM = "kl_sum"
KEY_REF_RECON = "ref_recon"
KEY_REF_L_S = "ref_l_s"
KEY_REF_L_P = "ref_l_p"
KEY_REF_KL = "ref_kl"
#: :func:`stroke_losses` key -> metric name in ``metrics.jsonl``.
METRIC_NAMES = {KEY_RECON: "l_r", KEY_L_S: "l_s", KEY_L_P: "l_p", KEY_KL: "l_kl", KEY_KL_SUM: "kl_sum",
                KEY_REF_RECON: "ref_l_r", KEY_REF_L_S: "ref_l_s", KEY_REF_L_P: "ref_l_p", KEY_REF_KL: "ref_l_kl"}
DEFINITION = "Ha & Eck 2017 eq. 5-6; l_kl per latent dim; ref_*: the reference's normalisation and floored KL"
NOTES = {"l_r": "L_R = L_s + L_p, step sums / padded length (raw)", "l_s": "offset term L_s (raw)",
         "l_p": "pen-state term L_p (raw)", "l_kl": "KL per latent dimension (raw)", "kl_sum": "KL per sketch",
         "ref_l_r": "L_R as the reference reports it: step sums / the data's Nmax",
         "ref_l_s": "L_s / the data's Nmax (reference)", "ref_l_p": "L_p over Nmax steps / Nmax (reference)",
         "ref_l_kl": "max(L_KL, kl_tolerance) per batch (reference)"}


@torch.no_grad()
def stroke_losses(model, strokes: torch.Tensor, lengths: torch.Tensor, *, batch_size: int = 100,
                  seed: int = 0, nmax: int | None = None) -> dict[str, float]:
    """Test losses in nats, averaged over sketches (eval mode: no dropout), raw and as the reference reports them.

    ``z`` is drawn from ``q(z | S)`` with a generator seeded by ``seed`` (as the reference
    evaluates), so repeated calls give equal numbers.

    Args:
        model: a :class:`~latentstudio.models.sketch_rnn.SketchRNN`.
        strokes: ``float32 [N, T, 5]`` padded stroke-5 (T is normally the model's Nmax); lengths: ``int64 [N]``.
        batch_size: sketches per forward pass (also the batches the reference KL floor applies to).
        seed: seed of the posterior draws.
        nmax: the data's Nmax (its longest sketch) for the reference values (default: the model's
            ``max_seq_len``); the decoder runs ``max(T, nmax)`` steps.

    Returns:
        Raw: ``recon`` (L_R), ``l_s``, ``l_p`` (step sums / T), ``kl`` (L_KL per latent dimension, not
        floored), ``kl_sum`` (KL per sketch); reference: ``ref_recon``, ``ref_l_s``, ``ref_l_p`` (step
        sums over the first ``nmax`` steps / ``nmax``), ``ref_kl`` (``max(L_KL, kl_tolerance)`` per
        batch); and ``n`` = N. KL keys only for conditional models.

    Raises:
        DataError: no sketches; ShapeError: bad shapes or lengths.
    """
    if strokes.shape[0] == 0:
        raise DataError("cannot evaluate on an empty split")
    was = model.training
    model.eval()
    dev = model.output.weight.device
    g = torch.Generator(device=dev).manual_seed(seed)
    t_len = strokes.shape[1]
    nmax = int(nmax or model.config.max_seq_len)
    if nmax > t_len:  # run the decoder over the data's Nmax steps (the extra steps are end-of-sketch padding)
        pad = strokes.new_zeros(strokes.shape[0], nmax - t_len, 5)
        pad[..., 4] = 1.0
        strokes = torch.cat([strokes, pad], dim=1)
    sums: dict[str, float] = {}
    n_total = 0
    for i in range(0, strokes.shape[0], batch_size):
        x = strokes[i : i + batch_size].to(dev)
        ln = lengths[i : i + batch_size].to(dev)
        parts = model.forward_terms(x, ln, generator=g)
        n = x.shape[0]
        n_total += n
        s_sum = parts["s_steps"].sum(1)
        vals = {KEY_L_S: s_sum / t_len, KEY_L_P: parts["p_steps"][:, :t_len].sum(1) / t_len,
                KEY_REF_L_S: s_sum / nmax, KEY_REF_L_P: parts["p_steps"][:, :nmax].sum(1) / nmax}
        batch_means = {k: float(v.mean()) for k, v in vals.items()}
        if "kl_dims" in parts:
            kl = float(parts["kl_dims"].mean())
            batch_means.update({KEY_KL: kl, KEY_KL_SUM: float(parts["kl_dims"].sum(-1).mean()),
                                KEY_REF_KL: max(kl, float(model.config.kl_tolerance))})
        for k, v in batch_means.items():
            sums[k] = sums.get(k, 0.0) + v * n
    model.train(was)
    res: dict[str, float] = {k: v / n_total for k, v in sums.items()}
    res[KEY_RECON] = res[KEY_L_S] + res[KEY_L_P]
    res[KEY_REF_RECON] = res[KEY_REF_L_S] + res[KEY_REF_L_P]
    res["n"] = n_total
    return res


def evaluate_sketches(
    model,
    data: DataSpec | dict[str, Any] | str | None = None,
    *,
    extractor: str = "classifier",
    n_samples: int | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    download_weights: bool = False,
    progress: bool = True,
    batch_size: int = 100,
) -> Path:
    """Evaluate a sketch-rnn model on a test split and write ``metrics.jsonl`` + ``report.md``.

    Args:
        model: a loaded sketch-rnn model.
        data: the reference strokes (default: the model's stroke file); a stroke file path is accepted.
        extractor / download_weights / progress: unused (no feature extractor is involved).
        n_samples: evaluate only the first ``n_samples`` test sketches (default: all).
        out_dir: report folder (default: ``<run>/eval``, next to the model folder).
        seed: seed of the posterior draws.
        batch_size: sketches per forward pass.

    Returns:
        Path of ``report.md``.

    Raises:
        DataError: no stroke data known or given, an unreadable file, or an empty test split.
    """
    spec = data_spec_for(model, data)
    if spec.kind != "strokes":
        raise DataError(f"sketch-rnn models are evaluated on stroke files; {spec.name!r} holds {spec.kind} "
                        "(pass --data sketches.npz)")
    test = spec.load("test", max_seq_len=model.config.max_seq_len, scale_factor=float(model.scale_factor))
    if n_samples:
        test = test.subset(list(range(min(n_samples, len(test)))))
    if len(test) == 0:
        raise DataError(f"{spec.options.get('path')} has no sketches in its test split")
    x, ln = test.to_stroke5(model.config.max_seq_len)
    data_nmax = (getattr(model, "meta", None) or {}).get("dataset", {}).get("nmax")
    res = stroke_losses(model, x, ln, batch_size=batch_size, seed=seed, nmax=data_nmax)
    folder = Path(out_dir) if out_dir else Path(model.path).parent / "eval"
    folder.mkdir(parents=True, exist_ok=True)
    rec = Recorder(folder, reference=f"{test.name}/test", num_real=res["n"],
                   extra={"units": "nats", "seed": seed, "definition": DEFINITION})
    for k, metric in METRIC_NAMES.items():
        if k in res:
            rec.add(metric, res[k], "test sketches")
    provenance = [f"- model: `{model.path}`", f"- {trained_on(model.meta)}",
                  f"- reference: {test.name}/test ({res['n']} sketches, {test.source}); seed {seed}",
                  "- units: nats; z drawn from q(z | S) (conditional models)",
                  (f"- raw values divide step sums by the padded length {model.config.max_seq_len}; ref_* values divide "
                   f"by the data's Nmax {data_nmax or model.config.max_seq_len} and floor the KL at "
                   f"{model.config.kl_tolerance} per batch, as the reference reports them"), versions_line()]
    table = records_table(rec.rows, NOTES)
    return write_report(folder, title="sketch-rnn evaluation report", provenance=provenance,
                        sections=[("Test losses", table)],
                        footer="All values are also in `metrics.jsonl` (one JSON record per value).")


def sketch_results(report: str | Path) -> dict[str, Any]:
    """The latest value of each sketch metric next to ``report``, keyed as :func:`stroke_losses` (plus ``n``
    and ``reference``, e.g. ``"sheep/test"``)."""
    names = {v: k for k, v in METRIC_NAMES.items()}
    out: dict[str, Any] = {}
    for r in read_records(Path(report).parent):
        if r["metric"] in names:
            out[names[r["metric"]]] = r["value"]
            out["n"] = r.get("num_real")
            out["reference"] = r.get("reference")
    return out


__all__ = ["evaluate_sketches", "sketch_results", "stroke_losses"]
