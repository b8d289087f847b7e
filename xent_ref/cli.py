"""The ``xent-ref`` command line (also ``python -m xent_ref``).

Subcommands:

* ``xent-ref examples [NAME ...] [--list] [--lang {en,zh}]``: replay the source documents' worked examples.
* ``xent-ref golden export PATH``: write the golden corpus as one JSON file.
* ``xent-ref golden export-onnx DIR``: write the cases ONNX's loss operators can express as
  ONNX backend node tests (needs the ``onnx`` package).
* ``xent-ref verify --impl MODULE | --results FILE [--dtypes LIST]``: check an implementation
  against the corpus; ``--impl MODULE:FUNCTION --framework torch|jax`` a torch or JAX
  callable with its own autograd; ``--convention NAME --impl MODULE`` an implementation of
  another framework's losses against that framework's semantics.

Each subcommand lives in its own module; this file only parses arguments.
"""

from __future__ import annotations

import argparse
import sys

from xent_ref.teach.i18n import languages
from xent_ref.verify.messages import languages as report_languages
from xent_ref.version import __version__


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xent-ref",
        description="A pure-NumPy reference for the cross-entropy family of losses.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    ex = sub.add_parser("examples", help="replay the worked examples of the source documents")
    ex.add_argument("names", nargs="*", metavar="NAME", help="run only these examples")
    ex.add_argument("--list", action="store_true", help="list the examples and exit")
    ex.add_argument("--lang", choices=languages(), default="en",
                    help="language of the explanations (zh: Chinese); the numbers are the same")
    ex.set_defaults(_parser=ex)

    _add_golden(sub)
    _add_verify(sub)
    return parser


def _add_golden(sub) -> None:
    """``xent-ref golden export`` and ``golden export-onnx``."""
    golden = sub.add_parser("golden", help="the golden-value corpus")
    golden_sub = golden.add_subparsers(dest="golden_command", required=True)
    export = golden_sub.add_parser("export", help="write the corpus as one JSON file")
    export.add_argument("path", metavar="PATH", help="where to write the JSON file")
    export.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    export.set_defaults(_parser=export)
    onnx_export = golden_sub.add_parser(
        "export-onnx", help="write the cases ONNX's SoftmaxCrossEntropyLoss and "
        "NegativeLogLikelihoodLoss can express as ONNX backend node tests (needs onnx)")
    onnx_export.add_argument("directory", metavar="DIR", help="where to write the test folders")
    onnx_export.add_argument("--force", action="store_true",
                             help="write into DIR even if it is not empty")
    onnx_export.set_defaults(_parser=onnx_export)



def _add_verify(sub) -> None:
    """``xent-ref verify`` and its options."""
    verify = sub.add_parser("verify", help="verify an implementation against the golden corpus")
    verify.set_defaults(_parser=verify)
    source = verify.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--impl",
        metavar="MODULE",
        help="a .py file or an importable Python module name, offering "
        "xent_ref's functions under their names and signatures; "
        "'torch' and 'xent_ref' are built in; with --framework, MODULE:FUNCTION "
        "(a torch or JAX callable); with --convention, a module offering that "
        "framework's functions",
    )
    source.add_argument(
        "--results", metavar="FILE", help="a results JSON file written by an outside implementation"
    )
    verify.add_argument(
        "--corpus",
        metavar="PATH",
        help="an exported corpus JSON file (default: generate the corpus afresh)",
    )
    verify.add_argument(
        "--dtypes", metavar="LIST", type=_dtype_list,
        help="check only the cases of these dtypes, comma-separated (float32, float64, "
        "float16, bfloat16): e.g. float32,float64 for an implementation without "
        "float16/bfloat16; the report says how many cases were left out",
    )
    verify.add_argument("--framework", choices=("torch", "jax"),
                        help="--impl MODULE:FUNCTION is a torch or JAX callable: the loss "
                        "from it, the gradients from the framework's autograd "
                        "(exit status 2 when the framework is not installed)")
    verify.add_argument("--function", metavar="NAME",
                        help="with --framework: the corpus function the callable computes "
                        "(default: the callable's name)")
    verify.add_argument("--names", metavar="PEER|A=B,...",
                        help="with --framework: rename arguments, a known peer (liger, "
                        "flash_attn, cce) or xent_name=their_name pairs")
    verify.add_argument("--device", default="cpu",
                        help="with --framework torch: where the tensors go (default cpu)")
    verify.add_argument("--convention", metavar="NAME", choices=_framework_names(),
                        help="check --impl MODULE against framework NAME's semantics ("
                        + ", ".join(_framework_names()) + "): its golden slice, expected "
                        "values from xent_ref.frameworks.NAME")
    verify.add_argument("--short", action="store_true",
                        help="print the learner's short report: the cause, its fix and one "
                        "failing case, in at most 12 lines")
    verify.add_argument("--lang", choices=report_languages(), default="en",
                        help="the language of the text report")
    verify.add_argument("--json", metavar="FILE", dest="json_path",
                        help="also write the report as JSON to FILE ('-': stdout, alone)")
    verify.add_argument("--junit-xml", metavar="FILE", dest="junit_path",
                        help="also write a JUnit XML report (one testcase per case and function)")
    verify.add_argument("--max-bytes", type=int, metavar="N",
                        help="read files of at most N bytes (default 64 MiB, "
                        "or $XENT_REF_MAX_BYTES)")
    verify.add_argument("--max-elements", type=int, metavar="N",
                        help="accept arrays of at most N elements (default 2**24, "
                        "or $XENT_REF_MAX_ELEMENTS)")


def _framework_names() -> tuple[str, ...]:
    from xent_ref.golden.framework_cases import FRAMEWORKS

    return FRAMEWORKS


def _dtype_list(text: str) -> tuple[str, ...]:
    """``--dtypes float32,float64``: the names checked (argparse reports a bad one)."""
    from xent_ref.verify import dtype_names

    try:
        return dtype_names([name.strip() for name in text.split(",") if name.strip()])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("dtypes: ")) from None


def _parse(parser: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """``parser.parse_args(argv)``, but an unknown option is reported by the subcommand
    it was given to, with that subcommand's usage: argparse leaves unknown options to the
    top-level parser, whose usage says nothing of the subcommand's options. Each
    subcommand's parser records itself as ``_parser`` (``set_defaults``)."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(_build_parser(), argv)
    if args.command == "examples":
        from xent_ref.teach import examples

        return examples.main(args.names, list_only=args.list, lang=args.lang)
    if args.command == "golden":
        if args.golden_command == "export-onnx":
            from xent_ref.golden import onnx_export

            return onnx_export.export_main(args.directory, force=args.force)
        from xent_ref import golden

        return golden.export_main(args.path, force=args.force)
    if args.framework or args.convention:
        return _frameworks_main(args)
    from xent_ref import verify

    return verify.main(impl=args.impl, results=args.results, corpus=args.corpus,
                       json_path=args.json_path, junit_path=args.junit_path,
                       max_bytes=args.max_bytes, max_elements=args.max_elements,
                       dtypes=args.dtypes, short=args.short, lang=args.lang)


def _frameworks_main(args: argparse.Namespace) -> int:
    """``verify --framework`` / ``verify --convention``: each needs --impl, not both."""
    if args.impl is None or (args.framework and args.convention):
        args._parser.error("--framework and --convention each need --impl, and exclude "
                           "each other")
    if args.corpus is not None:
        args._parser.error("--framework and --convention run the generated corpus; "
                           "--corpus is for --impl MODULE and --results")
    from xent_ref import frameworks_command

    if args.framework:
        return frameworks_command.framework_main(
            args.impl, args.framework, args.function, args.names, args.device, args.dtypes,
            args.json_path, args.junit_path)
    return frameworks_command.convention_main(args.impl, args.convention, args.dtypes,
                                              args.json_path)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
