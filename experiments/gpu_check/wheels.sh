#!/usr/bin/env bash
# The wheels the GPU machine needs for `python -m resnet_exp.gpu_check`, into ./.whl of the repository:
# ../shared/device/wheels.sh (Hydra, OmegaConf, W&B, the joblib launcher), plus pytest for the
# `gpu` tests. Run from the repository root on a machine with the package registries.
set -euo pipefail
bash ../shared/device/wheels.sh
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform any -d .whl pytest==8.4.2 pluggy==1.6.0 iniconfig==2.1.0
du -sh .whl
