"""The golden corpus: the cases (inputs, options, expected values and tolerances)
that any implementation of the cross-entropy family is judged against, their ids,
their files and their schema.

* :mod:`~xent_ref.golden.cases`: a case, its id, its tolerance, calling a function as it says;
* :mod:`~xent_ref.golden.inputs`: the deterministic inputs of every case;
* :mod:`~xent_ref.golden.second_order_inputs`: the inputs of the second-order kinds
  (Hessian-vector products, target gradients, per-token statistics);
* :mod:`~xent_ref.golden.expected`: the expected values, written by xent_ref;
* :mod:`~xent_ref.golden.files`: content hashes, the JSON file and the export command;
* :mod:`~xent_ref.golden.schema` and :mod:`~xent_ref.golden.jsonio`: checking and encoding.
"""

from xent_ref._engine.lowprec import (  # noqa: F401
    finfo,
    round_once,
)
from xent_ref.golden.jsonio import (  # noqa: F401
    decode_array,
    dtype_named,
    encode_array,
    is_float,
    npy_bytes,
    read_npy,
)
from xent_ref.golden.schema import (  # noqa: F401
    FUNCTIONS,
    SIGNATURES,
    SECOND_ORDER,
    SECOND_ORDER_FUNCTIONS,
    STATISTICS,
    EXACT_STATISTICS,
    GRAD_TARGET_KWARGS,
    RESULT_FIELDS,
    signature_of,
    SchemaError,
    printable,
)
from xent_ref.golden.cases import (  # noqa: F401
    POSITIONAL,
    ROUNDOFF_UNITS,
    roundoff_units,
    tolerance,
    Case,
    call_function,
    call_grad,
    call_second_order,
    parse_id,
    DTYPES,
    DTYPE_SUFFIXES,
    ID_KEYS,
    LOW_PRECISION_DTYPES,
    C,
    SHAPES,
    REDUCTIONS,
    grad_parts,
)
from xent_ref.golden.inputs import (  # noqa: F401
    SEED,
    VOCABULARIES,
    PEAKS,
    FINITE_TAIL,
    LLM_OPTIONS,
)
from xent_ref.golden.expected import (  # noqa: F401
    float64_reference,
    widened,
    TORCH_ERRORS,
    torch_errors,
    low_precision_specs,
    low_precision_cases,
    second_order_cases,
    redrawn,
    build_corpus,
)
from xent_ref.golden.files import (  # noqa: F401
    FORMAT,
    SCHEMA_VERSION,
    corpus_sha256,
    inputs_sha256,
    LARGE_ARRAY,
    ARRAY_DIRECTORY,
    encode_stored,
    case_to_json,
    decode_stored,
    encode_grad,
    decode_grad,
    case_from_json,
    corpus_to_json,
    read_corpus,
    write_corpus,
    write_arrays,
    export_main,
)
