"""Kernel C source read with a real parser (tree-sitter's C grammar): its functions and where
they are. The kernel's macros leave tree-sitter some ERROR nodes, which it contains locally;
the one shape that matters here is rebuilt: `SYSCALL_DEFINEn(name, ...) { ... }` reads as a
call statement then a block, and is taken as the function `sys_name`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import tree_sitter_c
from tree_sitter import Language, Node, Parser, Tree

_SYSCALL = re.compile(rb"^(?:COMPAT_)?SYSCALL_DEFINE\d\(\s*(\w+)")


@cache
def _parser() -> Parser:
    return Parser(Language(tree_sitter_c.language()))


def parse(source: bytes) -> Tree:
    return _parser().parse(source)


@dataclass(frozen=True)
class Function:
    name: str
    start_line: int  # 1-based, the line of its name (or of SYSCALL_DEFINEn)
    end_line: int  # the line of its closing brace
    body: Node  # the compound statement


def _declared_name(node: Node | None) -> str | None:
    """The identifier a declarator declares (through pointers, parentheses and attributes)."""
    while node is not None and node.type != "identifier":
        node = node.child_by_field_name("declarator") or next(
            (c for c in node.named_children if c.type.endswith("declarator") or c.type == "identifier"), None)
    return node.text.decode() if node is not None and node.text is not None else None


def _top_level(node: Node):
    """Top-level items, looking inside preprocessor conditionals (#ifdef CONFIG_... blocks)."""
    for child in node.children:
        if child.type.startswith("preproc_if") or child.type in ("preproc_else", "preproc_elif", "preproc_elifdef"):
            yield from _top_level(child)
        else:
            yield child


def functions(tree: Tree) -> list[Function]:
    found: list[Function] = []
    items = list(_top_level(tree.root_node))
    for k, item in enumerate(items):
        if item.type == "function_definition":
            name, body = _declared_name(item.child_by_field_name("declarator")), item.child_by_field_name("body")
            if name and body is not None:
                found.append(Function(name, item.start_point[0] + 1, item.end_point[0] + 1, body))
        elif item.type == "expression_statement" and item.text and k + 1 < len(items) \
                and items[k + 1].type == "compound_statement":
            m = _SYSCALL.match(item.text)
            if m:
                body = items[k + 1]
                found.append(Function(f"sys_{m[1].decode()}", item.start_point[0] + 1, body.end_point[0] + 1, body))
    return found


def functions_of(source: bytes) -> dict[str, Function]:
    """{name: function}; a name defined twice (under #ifdef and #else) keeps its first definition."""
    out: dict[str, Function] = {}
    for f in functions(parse(source)):
        out.setdefault(f.name, f)
    return out
