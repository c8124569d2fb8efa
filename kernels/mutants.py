"""One-point faults generated from the kernel's code (`otns mutate --auto`), not from a rule list.

The C is parsed with tree-sitter (kernels/csource.py); each operator below rewrites one node
of one function of kernels/feature_code.toml:

  negate     an if's condition                       if (x)        -> if (!(x))
  operand    one side of && or ||                    a && b        -> a   /   b
  flag       one flag of a | mask                    A | B | C     -> A | C
  statement  a call, an assignment or a goto         foo(x);       -> ;
  return     an early return inside an if            return -E;    -> ;
  errno      the errno returned                      -EINVAL       -> -EPERM
  swap       two adjacent early-exit ifs              if (a) ..; if (b) ..  -> the other order
  boundary   a comparison off by one                 a < b         -> a <= b

Each fault is a Fault (kernels/faults.py) like a hand-written one: the exact text to replace,
made unique in the file by taking whole lines and as many lines before them as needed, and
its replacement. Its id is stable for a given source: auto-FUNCTION-LINE-OPERATOR[-N].
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Node

from . import csource
from .coverage import FeatureFile
from .faults import Fault

OPERATORS = ("negate", "operand", "flag", "statement", "return", "errno", "swap", "boundary")
# Another errno for each, so that the fault is visible as a different error.
_ERRNO_SWAP = {"EINVAL": "EPERM", "EPERM": "EINVAL", "ENOTDIR": "EINVAL", "ENOSPC": "ENOMEM", "ENOMEM": "ENOSPC",
               "EBADF": "EINVAL", "ENOENT": "EINVAL", "EBUSY": "EINVAL", "EFAULT": "EINVAL", "E2BIG": "EINVAL",
               "EOPNOTSUPP": "EINVAL", "ENOTTY": "EINVAL", "EACCES": "EPERM", "ESRCH": "EINVAL", "EEXIST": "EINVAL"}
_BOUNDARY = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}
_FLAG = re.compile(r"[A-Z][A-Z0-9_]*|0x[0-9a-fA-F]+|\d+|\(?[A-Z][A-Z0-9_]*\s*<<\s*\d+\)?")


@dataclass(frozen=True)
class Site:
    """One rewrite: the bytes [start, end) of the file become `new`."""
    function: str
    line: int  # 1-based, where the rewritten node starts
    operator: str
    start: int
    end: int
    new: bytes
    why: str


def _op(node: Node) -> str:
    op = node.child_by_field_name("operator")
    return op.type if op is not None else ""


def _text(node: Node) -> bytes:
    return node.text or b""


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _early_exit(node: Node) -> bool:
    """An if without else whose body is a return or goto (alone or as the block's only statement)."""
    if node.type != "if_statement" or node.child_by_field_name("alternative") is not None:
        return False
    body = node.child_by_field_name("consequence")
    if body is not None and body.type == "compound_statement" and len(body.named_children) == 1:
        body = body.named_children[0]
    return body is not None and body.type in ("return_statement", "goto_statement")


def _exit_of(node: Node) -> bytes:
    """The return or goto an early-exit if ends with, as text without spaces."""
    body = node.child_by_field_name("consequence")
    if body is not None and body.type == "compound_statement" and body.named_children:
        body = body.named_children[0]
    return b"".join(_text(body).split()) if body is not None else b""


def _flags(node: Node) -> list[Node]:
    """The operands of a chain of | (a | b | c parses as (a | b) | c)."""
    if node.type == "binary_expression" and _op(node) == "|":
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        return [*(_flags(left) if left else []), *([right] if right else [])]
    if node.type == "parenthesized_expression" and len(node.named_children) == 1:
        return _flags(node.named_children[0]) or [node]
    return [node]


def sites(fn: csource.Function) -> Iterator[Site]:
    line = lambda n: n.start_point[0] + 1  # noqa: E731 - a name for the one expression
    seen_chains: set[int] = set()
    for node in _walk(fn.body):
        t = node.type
        if t == "if_statement":
            cond = node.child_by_field_name("condition")
            if cond is not None:
                inner = cond.named_children[0] if cond.named_children else cond
                yield Site(fn.name, line(node), "negate", inner.start_byte, inner.end_byte,
                           b"!(" + _text(inner) + b")", f"the condition `{_short(inner)}` is negated")
        elif t == "binary_expression":
            op = _op(node)
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            if left is None or right is None:
                continue
            if op in ("&&", "||"):
                for keep, drop in ((left, right), (right, left)):
                    yield Site(fn.name, line(node), "operand", node.start_byte, node.end_byte, _text(keep),
                               f"`{_short(drop)}` is dropped from `{_short(node)}`")
            elif op == "|" and node.parent is not None and not (node.parent.type == "binary_expression"
                                                               and _op(node.parent) == "|"):
                chain = _flags(node)
                if len(chain) >= 2 and node.start_byte not in seen_chains and \
                        all(_FLAG.fullmatch(_text(c).decode(errors="replace").strip()) for c in chain):
                    seen_chains.add(node.start_byte)
                    for k, dropped in enumerate(chain):
                        rest = b" | ".join(_text(c) for j, c in enumerate(chain) if j != k)
                        yield Site(fn.name, line(node), "flag", node.start_byte, node.end_byte, rest,
                                   f"{_short(dropped)} is dropped from the mask `{_short(node)}`")
            elif op in _BOUNDARY:
                opnode = node.child_by_field_name("operator")
                assert opnode is not None
                yield Site(fn.name, line(node), "boundary", opnode.start_byte, opnode.end_byte,
                           _BOUNDARY[op].encode(), f"`{_short(node)}` is off by one ({op} becomes {_BOUNDARY[op]})")
        elif t == "expression_statement" and node.named_children:
            expr = node.named_children[0]
            if expr.type in ("call_expression", "assignment_expression", "update_expression") \
                    and not _is_macro_block(expr):
                yield Site(fn.name, line(node), "statement", node.start_byte, node.end_byte, b";",
                           f"`{_short(node)}` is not done")
        elif t == "goto_statement":
            yield Site(fn.name, line(node), "statement", node.start_byte, node.end_byte, b";",
                       f"`{_short(node)}` is not taken")
        elif t == "return_statement" and _inside_if(node, fn):
            yield Site(fn.name, line(node), "return", node.start_byte, node.end_byte, b";",
                       f"the early `{_short(node)}` is not taken: the code goes on")
        elif t == "unary_expression" and _op(node) == "-":
            arg = node.child_by_field_name("argument")
            name = _text(arg).decode(errors="replace") if arg is not None else ""
            if name in _ERRNO_SWAP:
                yield Site(fn.name, line(node), "errno", node.start_byte, node.end_byte,
                           f"-{_ERRNO_SWAP[name]}".encode(), f"-{name} becomes -{_ERRNO_SWAP[name]}")
        if t == "compound_statement":
            kids = node.named_children
            for a, b in zip(kids, kids[1:], strict=False):
                # Two checks that leave the same way (the same return) cannot be told apart by
                # their order: such a swap is equivalent by construction.
                if _early_exit(a) and _early_exit(b) and _exit_of(a) != _exit_of(b):
                    gap = (fn.body.text or b"")[a.end_byte - fn.body.start_byte:b.start_byte - fn.body.start_byte]
                    yield Site(fn.name, line(a), "swap", a.start_byte, b.end_byte, _text(b) + gap + _text(a),
                               f"the checks `{_short(a)}` and `{_short(b)}` run in the other order")


def _is_macro_block(expr: Node) -> bool:
    """scoped_guard(...) and friends parse as calls; deleting one deletes a lock, not a step."""
    fn = expr.child_by_field_name("function") if expr.type == "call_expression" else None
    return fn is not None and _text(fn).decode(errors="replace") in ("scoped_guard", "guard", "BUILD_BUG_ON")


def _inside_if(node: Node, fn: csource.Function) -> bool:
    p = node.parent
    while p is not None and p != fn.body:
        if p.type == "if_statement":
            return True
        p = p.parent
    return False


def _short(node: Node, limit: int = 60) -> str:
    text = " ".join(_text(node).decode(errors="replace").split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def as_fault(path: str, source: bytes, site: Site, ident: str) -> Fault | None:
    """The site as a Fault: whole lines around the rewrite, widened upwards until they occur once."""
    line_start = source.rfind(b"\n", 0, site.start) + 1
    end_nl = source.find(b"\n", site.end)
    line_end = len(source) if end_nl == -1 else end_nl
    while True:
        find = source[line_start:line_end]
        if source.count(find) == 1:
            break
        if line_start == 0:
            return None
        line_start = source.rfind(b"\n", 0, line_start - 1) + 1
    # As many lines as before: every line after keeps its number, and with it what __LINE__
    # gives (WARN_ON and BUG_ON carry it), so only the fault itself can change the object.
    new = site.new + b"\n" * max(0, source.count(b"\n", site.start, site.end) - site.new.count(b"\n"))
    replace = source[line_start:site.start] + new + source[site.end:line_end]
    if replace == find:
        return None
    return Fault(ident, "AUTO", path, find.decode("utf-8", "surrogateescape"),
                 replace.decode("utf-8", "surrogateescape"), f"{site.function}: {site.why}",
                 function=site.function, line=site.line, operator=site.operator)


def generate(tree: Path, files: list[FeatureFile], operators: tuple[str, ...] = OPERATORS) -> list[Fault]:
    """Every fault the operators make over the listed functions, in file and source order."""
    out: list[Fault] = []
    for f in files:
        source = (tree / f.path).read_bytes()
        extents = csource.functions_of(source)
        for name in f.functions:
            fn = extents.get(name)
            if fn is None:
                continue
            found = sorted((s for s in sites(fn) if s.operator in operators), key=lambda s: (s.start, s.operator))
            counts: Counter[tuple[int, str]] = Counter()
            for s in found:
                counts[(s.line, s.operator)] += 1
                k = counts[(s.line, s.operator)]
                ident = f"auto-{_slug(name)}-{s.line}-{s.operator}" + (f"-{k}" if k > 1 else "")
                fault = as_fault(f.path, source, s, ident[:64])
                if fault is not None:
                    out.append(fault)
    ids = Counter(f.id for f in out)
    return [f for f in out if ids[f.id] == 1]
