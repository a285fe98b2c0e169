#!/usr/bin/env bash
# The seed's framework in a virtual environment of its own, for mxnet_seed.py and step_check.py:
# MXNet 1.9.1 (the last 1.x, CPU build with oneDNN) needs numpy < 1.24, which the project's
# environment does not have.   experiments/seed_gap/mxnet_env.sh VENV   (about 150 MB, from PyPI)
set -euo pipefail
venv=${1:?usage: mxnet_env.sh VENV}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "mxnet==1.9.1" "numpy==1.23.5"
"$venv/bin/python" -c "import mxnet; print('mxnet', mxnet.__version__)"
