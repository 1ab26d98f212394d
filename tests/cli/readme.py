"""The README's Python blocks as one session a user types them into, in order (later blocks use
what earlier ones made). `print(x)  # <literal>` states what the user sees: the session checks it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
_STATED = re.compile(r"^(\s*)print\((.+)\)\s+#\s+(.+?)\s*$")

_PRELUDE = '''import ast as _ast


def _shows(value, stated):
    print(value, flush=True)
    assert value == _ast.literal_eval(stated), f"the README says {stated}, the server gave {value!r}"

'''


def python_blocks(text: str | None = None) -> list[str]:
    return _BLOCK.findall(README.read_text() if text is None else text)


def checked(block: str) -> str:
    """The block with each `print(expr)  # literal` line made a check that expr is that literal."""
    lines = []
    for line in block.splitlines():
        match = _STATED.match(line)
        if match and _is_literal(match.group(3)) and _is_expression(match.group(2)):
            indent, expr, stated = match.groups()
            line = f"{indent}_shows({expr}, {stated!r})"
        lines.append(line)
    return "\n".join(lines)


def session_script(replacements: dict[str, str]) -> str:
    """One script of every block, each announced on stdout; `replacements` point the blocks' URLs
    at the servers of the test (the README's own ports)."""
    parts = [_PRELUDE]
    for i, block in enumerate(python_blocks()):
        for old, new in replacements.items():
            block = block.replace(old, new)
        parts.append(f"print('--- README block {i + 1} ---', flush=True)\n{checked(block)}\n")
    return "\n".join(parts)


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return False
    return True


def _is_expression(text: str) -> bool:
    try:
        ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    return True
