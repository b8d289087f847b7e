"""The corpus as ONNX backend node tests (``xent-ref golden export-onnx DIR``).

ONNX's own node tests are the one cross-framework corpus of cross-entropy that
runtimes already run (``onnx.backend.test``): a folder per test holding
``model.onnx`` (one node) and ``test_data_set_0/input_<i>.pb``, ``output_<i>.pb``
(``TensorProto`` files). This module writes, in that layout, every golden case that
``SoftmaxCrossEntropyLoss`` or ``NegativeLogLikelihoodLoss`` (opset 13) can express:
the ONNX slice of :func:`xent_ref.golden.framework_cases.framework_cases` --
``cross_entropy`` with class-index targets and no label smoothing or LLM option, and
``nll_loss``, with at least two dimensions, in float32 or float64. The corpus's
``ignore_index`` (PyTorch's -100 when a case leaves it out) is the node's
attribute, since ONNX has none by default; class weights are the third input. The
expected output is the loss only (the optional ``log_prob`` output is not written).

Beside the folders, ``cases.json`` lists each folder's golden case id and tolerances
(``rtol``, ``atol``): a runner that compares with its own fixed tolerance may be
stricter or looser than the corpus on the edge cases. The ``onnx`` package is needed
(the optional extra ``frameworks``); without it the command says so and exits 2.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from xent_ref.golden.framework_cases import FrameworkCase, framework_cases
from xent_ref.golden.schema import printable

OPSET = 13
IR_VERSION = 7  # the IR version of opset 13: runtimes older than the onnx package load it
OPERATORS = {"softmax_cross_entropy_loss": ("SoftmaxCrossEntropyLoss",
                                            ("scores", "labels", "weights")),
             "negative_log_likelihood_loss": ("NegativeLogLikelihoodLoss",
                                              ("input", "target", "weight"))}
INDEX = "cases.json"


def node_test_name(case: FrameworkCase) -> str:
    """The folder of ``case``: ``test_<operator>_<the corpus id, alphanumerics and _>``.

    >>> node_test_name(framework_cases("onnx")[0])
    'test_softmax_cross_entropy_loss_cross_entropy_index_NxC_none_no_w_ign_none_ls_0_0_f32'
    """
    source = case.source.replace("=-", "_m")  # ign=-1 and ign=1 stay apart
    return f"test_{case.function}_" + re.sub(r"[^A-Za-z0-9]+", "_", source).strip("_")


def node_test(case: FrameworkCase):
    """``(model, inputs, outputs)``: the ONNX model of ``case`` and its tensors."""
    from onnx import TensorProto, helper, numpy_helper

    op_type, names = OPERATORS[case.function]
    arrays = [(name, np.asarray(value)) for name, value in zip(names, case.args)
              if value is not None]
    node = helper.make_node(op_type, [name for name, _ in arrays], ["output"],
                            reduction=case.kwargs["reduction"],
                            ignore_index=case.kwargs["ignore_index"])

    def info(name, array):
        elem = TensorProto.INT64 if array.dtype.kind in "iu" else \
            helper.np_dtype_to_tensor_dtype(array.dtype)
        return helper.make_tensor_value_info(name, elem, array.shape)

    graph = helper.make_graph([node], node_test_name(case), [info(n, a) for n, a in arrays],
                              [info("output", case.loss)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="xent-ref", ir_version=IR_VERSION)
    inputs = [numpy_helper.from_array(a.astype(np.int64) if a.dtype.kind in "iu" else a, n)
              for n, a in arrays]
    return model, inputs, [numpy_helper.from_array(np.asarray(case.loss), "output")]


def onnx_cases() -> list[FrameworkCase]:
    """The golden cases the two operators can express (the ONNX slice)."""
    return framework_cases("onnx")


def write_node_tests(directory, cases=None) -> list[str]:
    """Write a node test per case (default :func:`onnx_cases`) under ``directory`` and
    the index ``cases.json``; returns the folders written."""
    import onnx

    cases = onnx_cases() if cases is None else list(cases)
    names = [node_test_name(case) for case in cases]
    if len(set(names)) != len(names):
        raise ValueError("cases: two cases would share a test folder")
    os.makedirs(directory, exist_ok=True)
    index = []
    for case, name in zip(cases, names):
        model, inputs, outputs = node_test(case)
        data = os.path.join(directory, name, "test_data_set_0")
        os.makedirs(data, exist_ok=True)
        onnx.save(model, os.path.join(directory, name, "model.onnx"))
        for kind, tensors in (("input", inputs), ("output", outputs)):
            for i, tensor in enumerate(tensors):
                with open(os.path.join(data, f"{kind}_{i}.pb"), "wb") as f:
                    f.write(tensor.SerializeToString())
        index.append({"test": name, "id": case.id, "source": case.source,
                      "rtol": case.rtol, "atol": case.atol})
    with open(os.path.join(directory, INDEX), "w", encoding="utf-8") as f:
        json.dump({"opset": OPSET, "tests": index}, f, indent=1)
        f.write("\n")
    return names


def export_main(directory, force: bool = False) -> int:
    """``xent-ref golden export-onnx DIR [--force]``: 0 on success, 2 when onnx is not
    installed, ``DIR`` is a non-empty folder (without ``force``) or cannot be written."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        print("xent-ref golden export-onnx: needs the onnx package (pip install onnx, or "
              "the extra xent-ref[frameworks]); nothing was written")
        return 2
    if os.path.lexists(directory) and not (os.path.isdir(directory) and
                                           (force or not os.listdir(directory))):
        print(f"xent-ref golden export-onnx: {printable(directory)} exists and is not an "
              "empty folder; give --force to write into it")
        return 2
    try:
        names = write_node_tests(directory)
    except OSError as error:
        print(f"xent-ref golden export-onnx: cannot write {printable(directory)}: "
              f"{printable(error.strerror or error)}")
        return 2
    print(f"wrote {len(names)} ONNX node tests (opset {OPSET}) to {printable(directory)}/")
    return 0
