#!/bin/sh
# A `command` trial for the Slurm tests: reports the GPU its agent assigned it
# (CUDA_VISIBLE_DEVICES) as the metric `gpu`, so the records show which device each trial had.
sleep 0.2
printf '{"status":"ok","objective":"val_loss","metrics":{"val_loss":%s,"gpu":%s},"cost":{"flops":1e12,"devices":1}}\n' \
  "${SCALETUNE_PARAM_LR:-1}" "${CUDA_VISIBLE_DEVICES:-null}" > result.json
