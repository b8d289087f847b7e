"""The longest functions of some Python files, in code lines.

A code line is a line of the function's source that is neither blank, nor only a
comment, nor part of the function's docstring (a nested function's lines count for
the function that holds it, and for itself). The house rule is at most 60.

    uv run python scripts/function_lengths.py xent_ref/*.py xent_ref/_engine/*.py
    uv run python scripts/function_lengths.py --limit 60 xent_ref/*.py   # exit 1 if over
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
import tokenize


def _docstring_lines(node) -> set[int]:
    if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return set()
    body = node.body
    if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        return set(range(body[0].lineno, body[0].end_lineno + 1))
    return set()


def _code_lines(source: str) -> set[int]:
    """Line numbers that hold a token other than a comment or a line break."""
    lines = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    return lines


def function_lengths(path: str) -> list[tuple[int, str]]:
    """``[(code lines, qualified name)]`` of every function in ``path``."""
    source = open(path, encoding="utf-8").read()
    code = _code_lines(source)
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        docstrings |= _docstring_lines(node)
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    span = set(range(child.lineno, child.end_lineno + 1))
                    found.append((len((span & code) - docstrings), name))
                name += "."
            visit(child, name)

    visit(ast.parse(source), "")
    return sorted(found, reverse=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--limit", type=int, help="exit 1 if a function is longer")
    args = parser.parse_args(argv)
    over = False
    for path in args.paths:
        lengths = function_lengths(path)
        if not lengths:
            continue
        lines, name = lengths[0]
        print(f"{lines:4d}  {path}: {name}")
        over |= args.limit is not None and lines > args.limit
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
