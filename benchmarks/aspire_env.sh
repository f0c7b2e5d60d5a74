#!/usr/bin/env bash
# Build a virtual environment with ASPIRE (the independent simulator used by benchmarks/aspire_sim.py):
#
#   bash benchmarks/aspire_env.sh DIR          # then: DIR/bin/python benchmarks/aspire_sim.py --out /tmp/aspire-data
#
# ASPIRE pins its own numpy/scipy, so it lives in its own venv, not in the dev environment. The generator
# needs only ASPIRE, its dependencies (mrcfile, numpy, ...) and, for the labels file, nothing else: it writes
# the STAR file itself.
set -euo pipefail
DIR=${1:?usage: aspire_env.sh DIR}
PY=${PYTHON:-python3}
ASPIRE_VERSION=${ASPIRE_VERSION:-0.14.3}

"$PY" -m venv "$DIR"
"$DIR/bin/python" -m pip install -q --upgrade pip
"$DIR/bin/python" -m pip install -q "aspire==$ASPIRE_VERSION"
"$DIR/bin/python" -c "import aspire, numpy, scipy; print('aspire', aspire.__version__, '| numpy', numpy.__version__, '| scipy', scipy.__version__)"
