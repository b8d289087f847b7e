"""``xent-ref verify --framework`` and ``xent-ref verify --convention``: a kernel checked
where it runs, and an implementation checked against another framework's semantics.

* ``xent-ref verify --impl MODULE:FUNCTION --framework torch|jax [--function NAME]
  [--names PEER|a=b,...] [--device DEVICE]``: the callable ``FUNCTION`` of ``MODULE``
  (``torch.nn.functional:cross_entropy``, ``my_kernels:fused_ce``, a dotted attribute
  path after the colon) runs every golden case of the corpus function ``NAME`` (by
  default the callable's own name) through
  :func:`xent_ref.testing_frameworks.check_torch` or ``check_jax``: the loss from the
  callable, the gradients from the framework's autograd. ``--names`` renames
  arguments: a peer of :data:`xent_ref.testing_frameworks.PEER_NAMES` (``liger``,
  ``flash_attn``, ``cce``) or pairs ``xent_name=their_name``.
* ``xent-ref verify --convention NAME --impl MODULE``: the functions ``MODULE`` offers
  under framework ``NAME``'s names run on that framework's golden slice
  (:mod:`xent_ref.verify.frameworks`).

Exit status as for ``xent-ref verify``: 0 when every check passes, 1 when any fails, 2
when nothing could be checked -- the framework (torch, jax) is not installed, the
module or callable cannot be loaded, or no golden case could be called.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace

from xent_ref import testing_frameworks
from xent_ref.golden import FUNCTIONS, printable
from xent_ref.verify import load_implementation
from xent_ref.verify.frameworks import ConventionReport, run_convention

EXIT_PASSED, EXIT_FAILED, EXIT_UNAVAILABLE = 0, 1, 2
FRAMEWORK_PACKAGES = {"torch": "torch", "jax": "jax"}


class Unavailable(Exception):
    """Nothing could be checked (exit status 2); the message says why."""


def load_callable(spec: str):
    """``MODULE:ATTRIBUTE`` (the attribute a dotted path) as the object it names."""
    module_name, colon, path = spec.rpartition(":")
    if not colon or not module_name or not path:
        raise Unavailable(f"--impl {printable(spec)}: with --framework, give MODULE:FUNCTION "
                          "(e.g. torch.nn.functional:cross_entropy)")
    try:
        target = load_implementation(module_name)
        for part in path.split("."):
            target = getattr(target, part)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - an import's sys.exit() is no pass
        raise Unavailable(f"cannot load {printable(repr(spec))}: {type(error).__name__}: "
                          f"{printable(error)}") from None
    if not callable(target):
        raise Unavailable(f"{printable(spec)} is not callable")
    return target


def parse_names(text: str | None) -> dict[str, str]:
    """``--names``: a known peer (``liger``) or ``xent_name=their_name`` pairs."""
    if not text:
        return {}
    if text in testing_frameworks.PEER_NAMES:
        return dict(testing_frameworks.PEER_NAMES[text])
    names = {}
    for pair in text.split(","):
        ours, equals, theirs = pair.strip().partition("=")
        if not (equals and ours and theirs):
            raise Unavailable(f"--names {printable(text)}: expected one of "
                              f"{', '.join(testing_frameworks.PEER_NAMES)} or "
                              "xent_name=their_name pairs, comma-separated")
        names[ours.strip()] = theirs.strip()
    return names


def _function_of(fn, spec: str, function: str | None) -> str:
    name = function or spec.rpartition(":")[2].rpartition(".")[2]
    if name not in FUNCTIONS:
        raise Unavailable(f"{printable(spec)} is not named after a corpus function: say "
                          f"which one it computes with --function ({', '.join(FUNCTIONS)})")
    return name


def _framework_report(impl, framework, function, names, device, dtypes):
    package = FRAMEWORK_PACKAGES.get(framework)
    if package is None:
        raise Unavailable(f"--framework {printable(framework)}: expected torch or jax")
    if importlib.util.find_spec(package) is None:
        raise Unavailable(f"--framework {framework} needs {package}, which is not "
                          "installed here; nothing was checked")
    fn = load_callable(impl)
    name = _function_of(fn, impl, function)
    options = dict(dtypes=dtypes, names=parse_names(names))
    if framework == "torch":
        report = testing_frameworks.check_torch(fn, name, device=device, **options)
    else:
        report = testing_frameworks.check_jax(fn, name, **options)
    if not report.outcomes:
        raise Unavailable(f"{printable(impl)} takes the arguments of no golden case of "
                          f"{name} (rename them with --names)")
    subject = f"xent-ref verify --impl {printable(impl)} --framework {framework} ({name})"
    return replace(report, subject=subject)


def _write(path: str | None, text: str) -> None:
    if path is None:
        return
    if path == "-":
        sys.stdout.write(text)
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def framework_main(impl: str, framework: str, function: str | None = None,
                   names: str | None = None, device: str = "cpu", dtypes=None,
                   json_path: str | None = None, junit_path: str | None = None) -> int:
    """``xent-ref verify --impl MODULE:FUNCTION --framework torch|jax``; the exit status."""
    try:
        report = _framework_report(impl, framework, function, names, device, dtypes)
        if json_path != "-":
            print(report)
        _write(json_path, None if json_path is None else
               json.dumps(report.to_json(), indent=1) + "\n")
        _write(junit_path, None if junit_path is None else report.to_junit_xml())
    except (Unavailable, OSError) as error:
        print(f"xent-ref verify: {error}", file=sys.stderr if json_path == "-" else sys.stdout)
        return EXIT_UNAVAILABLE
    return EXIT_PASSED if report.ok else EXIT_FAILED


def convention_main(impl: str, convention: str, dtypes=None,
                    json_path: str | None = None) -> int:
    """``xent-ref verify --convention NAME --impl MODULE``; the exit status."""
    try:
        try:
            module = load_implementation(impl)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001
            raise Unavailable(f"cannot import {printable(repr(impl))}: "
                              f"{type(error).__name__}: {printable(error)}") from None
        outcomes = run_convention(module, convention, dtypes)
        if not outcomes:
            raise Unavailable(f"{printable(impl)} offers none of {convention}'s functions")
        report = ConventionReport(f"xent-ref verify --convention {convention} --impl "
                                  f"{printable(impl)}", convention, tuple(outcomes))
        if json_path != "-":
            print(report)
        _write(json_path, None if json_path is None else
               json.dumps(report.to_json(), indent=1) + "\n")
    except (Unavailable, OSError) as error:
        print(f"xent-ref verify: {error}", file=sys.stderr if json_path == "-" else sys.stdout)
        return EXIT_UNAVAILABLE
    return EXIT_PASSED if report.ok else EXIT_FAILED
