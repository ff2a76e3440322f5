#!/usr/bin/env bash
# GPU readiness check: the quick benchmark suite and the speed / efficiency scripts on a CUDA device,
# bf16 autocast where the family trains with it (two-stage VAE, DRAW, StyleGAN2) and fp32 for the
# metrics (FID features) and sketch-rnn; prints images/s and kimg/s at the end.
#
#   bash benchmarks/gpu_check.sh                      # on a machine with a CUDA device
#   bash benchmarks/gpu_check.sh --device cpu --suite smoke --no-run-py --results-dir /tmp/check
#                                                     # the same commands on CPU, tiny sizes (the tests)
#
# Options:
#   --device cuda|cpu     device of every script (default cuda; cuda fails fast without a device)
#   --suite quick|full|smoke
#                         work preset of the speed / efficiency scripts (default quick)
#   --results-dir DIR     where those scripts write their JSON (default benchmarks/results/gpu, so the
#                         committed CPU results are not replaced)
#   --no-run-py           skip `python benchmarks/run.py --suite quick` (it writes its own results
#                         into benchmarks/results)
#   --dry-run             print the commands only
#   --summary-only        print the summary of the JSON files already in --results-dir
set -euo pipefail

DEVICE=cuda
SUITE=quick
RESULTS=""
RUN_PY=1
DRY=0
SUMMARY_ONLY=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --suite) SUITE="$2"; shift 2 ;;
    --results-dir) RESULTS="$2"; shift 2 ;;
    --no-run-py) RUN_PY=0; shift ;;
    --dry-run) DRY=1; shift ;;
    --summary-only) SUMMARY_ONLY=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cuda|cpu) ;; *) echo "gpu_check.sh: --device must be cuda or cpu, got $DEVICE" >&2; exit 2 ;; esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RESULTS="${RESULTS:-benchmarks/results/gpu}"
PY="${PYTHON:-python}"

run() {
  if [[ "$DRY" != 2 ]]; then echo "+ $*"; fi
  if [[ "$DRY" == 0 ]]; then "$@"; fi
}

if [[ "$SUMMARY_ONLY" == 1 ]]; then DRY=2; fi
if [[ "$DRY" == 0 && "$DEVICE" == cuda ]]; then
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check.sh: no CUDA device visible to torch')"
  "$PY" -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__, '| bf16:', torch.cuda.is_bf16_supported())"
fi
if [[ "$DRY" == 0 ]]; then mkdir -p "$RESULTS"; fi

COMMON=(--suite "$SUITE" --device "$DEVICE" --results-dir "$RESULTS")
if [[ "$RUN_PY" == 1 ]]; then
  run "$PY" benchmarks/run.py --suite quick
fi
run "$PY" benchmarks/stylegan2_speed.py "${COMMON[@]}" --precision fp32,bf16
run "$PY" benchmarks/efficiency.py "${COMMON[@]}" --precision bf16 --threads 1
run "$PY" benchmarks/efficiency.py "${COMMON[@]}" --precision fp32 --threads 1 --out efficiency_fp32
run "$PY" benchmarks/speed_fid.py "${COMMON[@]}"
run "$PY" benchmarks/speed_sketch_rnn.py "${COMMON[@]}" --threads 1

if [[ "$DRY" == 1 ]]; then exit 0; fi
"$PY" - "$RESULTS" <<'PYEOF'
import json
import sys
from pathlib import Path

res = Path(sys.argv[1])


def load(name):
    p = res / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


print(f"\n== summary ({res}) ==")
sg = load("stylegan2_speed")
if sg:
    for g in sg["generation"]:
        what = f"stylegan2 generate {g['resolution']} px batch {g['batch']} {g['precision']}"
        print(f"{what:48s}", g.get("error") or f"{g['images_per_s']:.3f} images/s")
    for t in sg["training"]:
        what = f"stylegan2 train {t['resolution']} px {t['preset']} batch {t['batch']} {t['precision']}"
        print(f"{what:48s}", t.get("error") or f"{t['images_per_s']:.2f} images/s = {t['kimg_per_s']:.4f} kimg/s")
for name in ("efficiency", "efficiency_fp32"):
    eff = load(name)
    if eff:
        for run in eff["runs"]:
            for k, v in run["steps"].items():
                if "error" in v:
                    print(f"{name} {k:38s}", v["error"])
                    continue
                ips = v["batch"] / v["step_seconds_median"]["wall"]
                print(f"{name + ' ' + k + ' ' + eff['precision']:48s} {ips:.1f} images/s = {ips / 1000:.4f} kimg/s, "
                      f"{v['fraction_of_matmul_rate']['wall']:.2f} of the matmul rate")
fid = load("speed_fid")
if fid:
    e = fid["end_to_end"]
    print(f"{'FID features (fp32)':48s} {e['images_per_s_wall']['latentstudio']:.1f} images/s, "
          f"ratio to pytorch-fid {e['ratio_wall']:.3f}; same-input max diff {fid['features_same_input']['max_abs_diff']:.2e}")
sk = load("speed_sketch_rnn")
if sk:
    r = sk["runs"][0]
    ips = sk["batch"] / r["wall_seconds_median"]["latentstudio"]
    print(f"{'sketch-rnn train (fp32)':48s} {ips:.1f} sketches/s, ratio to nn.LSTM {r['ratio_wall_median']:.3f}")
PYEOF
