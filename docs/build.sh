#!/usr/bin/env bash
# Builds the documentation site (its pages executed, warnings as errors) with the given Python.
# Each executed page starts its own Jupyter kernel. Kernels started at the same moment by the
# parallel Sphinx jobs can pick the same free port and one dies at start ("ZMQError: Address
# already in use"). A build that fails only that way runs once more; any other failure fails at once.
set -uo pipefail
py=${1:?usage: docs/build.sh PYTHON}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for attempt in 1 2; do
  "$py" -m sphinx -W --keep-going -q -j 10 -b html docs docs/_build/html 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] && exit 0
  if ! grep -q -e "Address already in use" -e "Kernel died before replying to kernel_info" "$log"; then
    exit "$rc"
  fi
  [ "$attempt" -eq 1 ] && echo "docs: a notebook kernel died at start (a port clash); building once more" >&2
done
exit "$rc"
