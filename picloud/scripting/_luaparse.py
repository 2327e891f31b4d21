"""Lua 5.4 source → luaparser's syntax tree, and what we read from it: the
module shape (SPEC.md §5) and the literal ``require("…")`` names.

Pure and thread-safe (no shared state); callers memoise by source hash
(modules.py). luaparser is pure Python (ANTLR): about 10 ms for a small
module, tens of µs per byte, so callers keep it off the event loop when
they can.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from antlr4 import CommonTokenStream, InputStream, Token
from antlr4.error.Errors import ParseCancellationException
from antlr4.error.ErrorStrategy import BailErrorStrategy
from luaparser import astnodes as ast
from luaparser.ast import BailErrorListener
from luaparser.builder import BuilderVisitor
from luaparser.parser.LuaLexer import LuaLexer
from luaparser.parser.LuaParser import LuaParser

__all__ = ["Unparsable", "literal_requires", "parse", "shape_problem"]

_ALLOWED = (
    "only function definitions, local constants, require calls and a final return"
)
_STATEMENTS = {
    ast.Assign: "an assignment to a global or a field",
    ast.Call: "a function call",
    ast.Invoke: "a method call",
    ast.If: "an if statement",
    ast.While: "a while loop",
    ast.Repeat: "a repeat loop",
    ast.Fornum: "a for loop",
    ast.Forin: "a for loop",
    ast.Do: "a do block",
    ast.Goto: "a goto",
    ast.Label: "a label",
    ast.Break: "a break",
}
_LITERALS = (ast.Nil, ast.TrueExpr, ast.FalseExpr, ast.Number, ast.String)
_LEAVES = (*_LITERALS, ast.AnonymousFunction, ast.Name)


class Unparsable(Exception):
    """luaparser could not read a source (a syntax error, or Lua it does not
    support: hex floats, deep nesting)."""

    def __init__(self, reason: str, line: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def parse(source: str) -> ast.Chunk:
    """The syntax tree of ``source``.

    Raises:
        Unparsable: with luaparser's reason and, when it knows it, the line.
    """
    lexer = LuaLexer(InputStream(source))
    lexer.removeErrorListeners()
    lexer.addErrorListener(BailErrorListener())
    tokens = CommonTokenStream(lexer, channel=Token.DEFAULT_CHANNEL)
    parser = LuaParser(tokens)
    parser.removeErrorListeners()
    parser.addErrorListener(BailErrorListener())
    parser._errHandler = BailErrorStrategy()  # as luaparser.ast.parse does
    try:
        chunk: ast.Chunk = BuilderVisitor(tokens).visit(parser.start_())
    except ParseCancellationException as e:
        raise Unparsable(str(e), _line_of(str(e))) from None
    except RecursionError:
        raise Unparsable("the source is nested too deeply to check") from None
    # luaparser's builder converts literals with Python's int()/float(), and
    # raises whatever they raise (hex floats); anything else is its bug.
    except Exception as e:  # noqa: BLE001
        reason = f"luaparser cannot read it ({type(e).__name__}: {e})"
        raise Unparsable(reason) from None
    return chunk


def _line_of(message: str) -> int:
    # BailErrorListener's text: "line L:C: message"
    head = message.partition("line ")[2].partition(":")[0]
    return int(head) if head.isdigit() else 0


def shape_problem(chunk: ast.Chunk) -> tuple[int, str] | None:
    """The first top-level statement a module may not hold, as (line, reason);
    None if the chunk has the module shape (SPEC.md §5)."""
    body = chunk.body.body
    for statement in body:
        problem = _statement_problem(statement)
        if problem is not None:
            return problem
    if not body or not isinstance(body[-1], ast.Return):
        last = body[-1].line if body and body[-1].line else 0
        return last, "a module must end with `return` of its table"
    return None


def _statement_problem(node: Any) -> tuple[int, str] | None:
    line = node.line or 0
    if isinstance(node, ast.LocalFunction | ast.Function | ast.Method | ast.SemiColon):
        return None
    if isinstance(node, ast.LocalAssign):
        return _local_problem(node, line)
    if isinstance(node, ast.Return):
        bad = next((v for v in node.values if not _constant(v)), None)
        if bad is None:
            return None
        return bad.line or line, "a module must return its table, not an expression"
    if isinstance(node, ast.Call) and _require_name(node) is not None:
        return None
    what = _STATEMENTS.get(type(node), f"a {type(node).__name__} statement")
    return line, f"{what} at top level; a module holds {_ALLOWED}"


def _local_problem(node: ast.LocalAssign, line: int) -> tuple[int, str] | None:
    for target in node.targets:
        attribute = getattr(target, "attribute", None)
        if attribute is not None and attribute.name.id == "close":
            return line, "a to-be-closed variable at top level is not allowed"
    for value in node.values:
        if not _constant(value):
            return value.line or line, (
                "a local at a module's top level must be a constant: a literal, a "
                'table of constants, a function, a name or require("name")'
            )
    return None


def _constant(node: Any) -> bool:
    """Evaluating ``node`` runs no script code and calls nothing but require."""
    if isinstance(node, _LEAVES):
        return True
    if isinstance(node, ast.UMinusOp):
        return isinstance(node.operand, ast.Number)
    if isinstance(node, ast.Index):
        # a.b, a["b"], require("m").b: field reads of names and modules
        return isinstance(node.idx, (*_LITERALS, ast.Name)) and _constant(node.value)
    if isinstance(node, ast.Table):
        return all(
            (f.key is None or not f.between_brackets or isinstance(f.key, _LITERALS))
            and _constant(f.value)
            for f in node.fields
        )
    if isinstance(node, ast.Call):
        return _require_name(node) is not None
    return False


def _require_name(node: ast.Call) -> str | None:
    func, args = node.func, node.args
    if (
        isinstance(func, ast.Name)
        and func.id == "require"
        and len(args) == 1
        and isinstance(args[0], ast.String)
    ):
        text = args[0].s
        return text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return None


def literal_requires(chunk: ast.Chunk) -> set[str]:
    """Every ``require("name")`` with a literal name, anywhere in the chunk."""
    found: set[str] = set()
    for node in _nodes(chunk):
        if isinstance(node, ast.Call):
            name = _require_name(node)
            if name is not None:
                found.add(name)
    return found


def _nodes(root: ast.Node) -> Iterator[ast.Node]:
    # Iterative: a deep tree must not hit Python's recursion limit a second time.
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        yield node
        for key, value in vars(node).items():
            if key.startswith("_") or key == "comments":
                continue
            if isinstance(value, ast.Node):
                stack.append(value)
            elif isinstance(value, list):
                stack.extend(v for v in value if isinstance(v, ast.Node))
