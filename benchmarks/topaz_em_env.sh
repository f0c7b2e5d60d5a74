#!/usr/bin/env bash
# Build a virtual environment with the reference Topaz (topaz-em) for the side-by-side benchmark:
#
#   bash benchmarks/topaz_em_env.sh DIR        # then: python benchmarks/harness.py --topaz-exe DIR/bin/topaz ...
#
# torch is the same CPU build as the dev environment (constraints.txt), so both programs run the same
# kernels. topaz-em is installed without its dependencies: its runtime dependencies are installed
# explicitly, and torchvision, which it imports only to rotate and flip training crops, is replaced by the
# small shim in benchmarks/shims (rotate/hflip/vflip with torchvision's documented semantics; a real
# torchvision wheel would pull a second, CUDA torch build of several GB).
set -euo pipefail
DIR=${1:?usage: topaz_em_env.sh DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PY=${PYTHON:-python3}
TOPAZ_VERSION=${TOPAZ_VERSION:-0.3.20}

"$PY" -m venv "$DIR"
PIP=("$DIR/bin/python" -m pip install -q -c "$REPO/constraints.txt")
"${PIP[@]}" torch==2.13.0
# topaz-em's declared runtime dependencies other than torch/torchvision.
"${PIP[@]}" "tqdm>=4.65.0" "h5py>=3.7.0" numpy "pandas>=0.20.3" "psutil>=5.8.0" "scikit-learn>=0.19.0" \
    "scipy>=0.17.0" "pillow>=6.2.0" future
"${PIP[@]}" --no-deps "$HERE/shims"
"${PIP[@]}" --no-deps "topaz-em==$TOPAZ_VERSION"
"$DIR/bin/topaz" --version
"$DIR/bin/python" -c "import torch, torchvision, topaz; print('torch', torch.__version__, '| torchvision', torchvision.__version__)"
