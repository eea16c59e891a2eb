#!/usr/bin/env bash
# Build the documentation with warnings as errors; the gallery (examples/plot_*.py)
# runs at build time. Needs the docs extra: pip install -e ".[docs]".
# Offline by design: intersphinx links are made only with SKMETA_DOCS_ONLINE=1
# (docs/conf.py says why). Extra arguments go to sphinx-build, e.g. -E.
set -euo pipefail
cd "$(dirname "$0")"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"  # see docs/conf.py
export MPLBACKEND=Agg
start=$SECONDS
python -m sphinx -W --keep-going -b html . _build/html "$@"
echo "docs built in $((SECONDS - start)) s: $(pwd)/_build/html/index.html"
