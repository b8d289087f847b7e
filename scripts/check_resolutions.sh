#!/usr/bin/env bash
# The test suite at the lowest versions pyproject.toml allows and at the highest.
#
# For each of uv's resolutions "lowest-direct" (every direct dependency -- numpy,
# ml_dtypes and the test extra -- at its lower bound) and "highest", this makes a
# throwaway virtual environment, installs the project with its test extra as
# `pip install -e ".[test]"` would (resolved by uv), prints the versions it got and
# runs pytest there. It also checks that the golden corpus is the locked environment's
# (see below). The notebook tests skip
# (the notebooks extra is not installed), as on the README's pip path.
#
# NumPy, SciPy and ml_dtypes come as wheels only (--only-binary): on a Python that
# a lower bound has no wheel for, the lowest version that has one is taken.
#
#   scripts/check_resolutions.sh                 # Python 3.10 (the lowest supported), or
#                                                # the default one when uv has no 3.10
#   PYTHON=3.12 scripts/check_resolutions.sh -x  # another Python; arguments go to pytest
#
# Exit status: 0 when both runs pass, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-3.10}
if [ -z "${PYTHON:-}" ] && ! uv python find --quiet 3.10 >/dev/null 2>&1; then
    python=$(uv python find --system)
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The corpus's inputs must have the same bits everywhere; its expected values come from
# NumPy's exp and log, whose last bit may differ between NumPy versions, so the export's
# sha256 must match the locked one only where NumPy is the locked version.
fingerprint='import sys, numpy as np; from xent_ref import golden
c = golden.build_corpus()
print(np.__version__, golden.inputs_sha256(c), golden.corpus_sha256(c))'
read -r locked_numpy locked_inputs locked_corpus < <(uv run --quiet python -c "$fingerprint")
echo "locked: numpy $locked_numpy, inputs sha256 $locked_inputs, corpus sha256 $locked_corpus"
status=0
for resolution in lowest-direct highest; do
    venv="$work/$resolution"
    echo "=== $resolution (Python $python) ==="
    if ! uv venv --quiet --python "$python" "$venv" ||
        ! VIRTUAL_ENV="$venv" uv pip install --quiet --resolution "$resolution" \
            --only-binary numpy --only-binary scipy --only-binary ml_dtypes \
            -e ".[test]"; then
        echo "$resolution: cannot install"
        status=1
        continue
    fi
    "$venv/bin/python" -c 'import sys, numpy, ml_dtypes, scipy, pytest, hypothesis, mpmath
print("python", sys.version.split()[0], "numpy", numpy.__version__, "ml_dtypes",
      ml_dtypes.__version__, "scipy", scipy.__version__, "pytest", pytest.__version__,
      "hypothesis", hypothesis.__version__, "mpmath", mpmath.__version__)'
    read -r numpy inputs corpus < <("$venv/bin/python" -c "$fingerprint")
    "$venv/bin/xent-ref" golden export "$work/$resolution.json" | tail -n 1
    if [ "$inputs" != "$locked_inputs" ]; then
        echo "$resolution: the corpus inputs differ from the locked environment's"
        status=1
    elif [ "$corpus" != "$locked_corpus" ] && [ "$numpy" = "$locked_numpy" ]; then
        echo "$resolution: the corpus differs from the locked one under the same NumPy"
        status=1
    else
        echo "$resolution: inputs as locked; corpus $( [ "$corpus" = "$locked_corpus" ] &&
            echo "as locked" || echo "expected values differ (NumPy $numpy, not $locked_numpy)")"
    fi
    if ! "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"; then
        echo "$resolution: tests FAILED"
        status=1
    fi
done
exit $status
