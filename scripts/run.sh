#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: installs dependencies, builds, then tells the
# whole story on this machine (no GPU, no cluster needed), showing progress and where every
# artefact lands:
#   1. a CARBS sweep of small GPTs on the built-in corpus across local worker slots
#      (model size, tokens, learning rate and batch size searched; cost in FLOPs),
#   2. the scaling fit along the performance-cost Pareto front, with its HTML report,
#   3. extrapolation to a 100x larger compute budget, emitting that run's training config,
#   4. LoRA fine-tuning of the sweep's best model on the built-in instruction tasks with the
#      settings the fit gives at that model's compute, printing exact-match accuracy before and
#      after.
#
#   bash scripts/run.sh                                  # the embedded default (~15 min, 2 cores)
#   bash scripts/run.sh --config configs/sweep_lm.yaml   # a bigger sweep (a GPU node or an
#                                                        # allocation: see below)
#   OUT=DIR                       where the artefacts go (default runs/main)
#   FACTOR=100                    compute of the extrapolated run / largest compute in the sweep
#
# Inside a Slurm allocation (SLURM_JOB_ID set, e.g. `salloc -N 4 --gpus-per-node 8`) the sweep
# runs as one orchestrator plus one agent per node (`srun --mpi=pmix`); to queue the sweep instead,
# use `scaletune submit` (docs/slurm.md) and run steps 2-4 on its records.
set -euo pipefail
cd "$(dirname "$0")/.."

config=configs/main_sweep.yaml
if [ "${1:-}" = "--config" ]; then
  config=${2:?--config needs a file}
  shift 2
fi
out=${OUT:-runs/main}
factor=${FACTOR:-100}

bash scripts/setup.sh
bash scripts/build.sh scaletune   # the program and its LibTorch plugin; tests are not needed

st=build/scaletune
step() { printf '\n==> %s\n' "$*" >&2; }

if [ -e "$out/sweep/records.h5" ]; then
  echo "main job: $out/sweep/records.h5 exists; resuming that sweep (delete $out to start over)" >&2
  resume=(--resume)
else
  resume=()
fi
mkdir -p "$out"

step "1/4 CARBS sweep ($config) -> $out/sweep"
sweep=("$st" sweep --config "$config" --set out_dir="$out/sweep" --records "$out/sweep/records.h5"
       "${resume[@]}" "$@")
if [ -n "${SLURM_JOB_ID:-}" ] && command -v srun >/dev/null; then
  srun --mpi=pmix --ntasks-per-node=1 "${sweep[@]}"
else
  "${sweep[@]}"
fi
"$st" status "$out/sweep/records.h5"

step "2/4 scaling fit along the Pareto front -> $out/fit.json, $out/report/"
"$st" fit --records "$out/sweep/records.h5" --out "$out/fit.json" --report "$out/report"

# The largest compute in the sweep, and the sweep's best run (its trial exported the LoRA base).
read -r max_compute best_id < <(/usr/bin/python3 - "$out/fit.json" <<'EOF'
import json, sys
fit = json.load(open(sys.argv[1]))
best = min(fit["runs"], key=lambda r: r["loss"])
print(fit["summary"]["max_compute"], best["id"])
EOF
)
target=$(/usr/bin/python3 -c "print('%.3g' % ($max_compute * $factor))")
best_dir=$(printf '%s/sweep/trials/trial-%06d' "$out" "$best_id")

step "3/4 extrapolate to ${factor}x the largest run: C = $target FLOPs -> $out/big_run.yaml"
context=$(sed -n 's/.*context: *\([0-9]*\).*/\1/p' "$config" | head -n 1)
"$st" extrapolate --fit "$out/fit.json" --compute "$target" --seq-len "${context:-64}" \
  --head-dim 16 --aspect-ratio 32 --out "$out/big_run.yaml" --report "$out/report" \
  > "$out/extrapolation.json"
cat "$out/big_run.yaml"

# The fine-tuned model is the sweep's best, not the 100x run (which is not trained here), so its
# tuned settings are the fitted laws read at its own compute, inside the sweep's range; the
# extrapolated ones are for a model 100x the size (docs/lora.md, "Tuned settings").
step "4/4 LoRA fine-tune of the best model (trial $best_id) with the settings the fit gives at its compute -> $out/finetune"
"$st" finetune --config configs/lora_tiny.yaml --base "$best_dir" --hparams "$out/fit.json" \
  --out "$out/finetune" | tee "$out/finetune.json"

/usr/bin/python3 - "$out" <<'EOF'
import json, sys
out = sys.argv[1]
ft = json.load(open(out + "/finetune.json"))
print(f"\nmain job done. LoRA exact match {100 * ft['accuracy_before']:.1f}% -> "
      f"{100 * ft['accuracy']:.1f}%, validation loss {ft['val_loss_before']:.3f} -> "
      f"{ft['val_loss']:.3f}")
for what, path in [
    ("sweep records (HDF5, h5py-readable)", "sweep/records.h5"),
    ("trial directories", "sweep/trials/"),
    ("scaling fit", "fit.json"),
    ("report (open in a browser)", "report/index.html"),
    ("extrapolation with intervals", "extrapolation.json"),
    ("config of the extrapolated run", "big_run.yaml"),
    ("LoRA adapter / merged model", "finetune/"),
]:
    print(f"  {what:38s} {out}/{path}")
EOF
