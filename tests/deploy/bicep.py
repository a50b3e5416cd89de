"""A reader for the subset of Bicep that deploy/azure uses, so tests can check its structure
without the Bicep compiler (a .NET program, not installable from the registries here).

Callers: tests/deploy/test_bicep.py. Reads ``param`` declarations (name, type, whether they have
a default), ``module`` references with the params they pass, and ``resource`` declarations with
their bodies as nested dicts and lists of raw expression strings (``'Spot'``, ``true``,
``length(zones)``). A resource declared in a ``[for ...]`` loop reads as its loop body.
Multi-line expressions other than objects and arrays are not supported (none are used).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_HEAD = re.compile(
    r"^(resource|module)\s+(\w+)\s+'([^']+)'(?:\s+existing)?\s*=\s*(?:if\s*\(.*\)\s*)?"
    r"(?:\[for\s+.*:\s*)?\{$")
_PARAM = re.compile(r"^param\s+(\w+)(?:\s+(\w+))?(?:\s*=\s*(.+))?$")


def _code(line: str) -> str:
    """The line without its // comment (outside quoted strings)."""
    quoted = False
    for i, char in enumerate(line):
        if char == "'":
            quoted = not quoted
        elif not quoted and line.startswith("//", i):
            return line[:i].rstrip()
    return line.rstrip()


@dataclass
class Declaration:
    keyword: str  # resource | module
    symbol: str
    target: str  # 'type@version' or a module path
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class BicepFile:
    path: Path
    params: dict[str, str | None] = field(default_factory=dict)  # name -> default (or None)
    declarations: list[Declaration] = field(default_factory=list)

    def resources(self, type_prefix: str) -> list[Declaration]:
        return [d for d in self.declarations
                if d.keyword == "resource" and d.target.split("@")[0] == type_prefix]

    def modules(self) -> list[Declaration]:
        return [d for d in self.declarations if d.keyword == "module"]


def _parse_block(lines: list[str], start: int, closer: str) -> tuple[Any, int]:
    container: Any = {} if closer == "}" else []
    i = start
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        if line in ("}", "]", "}]", "})"):
            return container, i
        if isinstance(container, list):
            if line == "{":
                item, i = _parse_block(lines, i, "}")
                container.append(item)
            else:
                container.append(line)
            continue
        key, _, value = line.partition(":")
        key, value = key.strip().strip("'"), value.strip()
        if value.endswith("{"):  # an object, or a call whose last argument is one (union)
            container[key], i = _parse_block(lines, i, "}")
        elif value == "[":
            container[key], i = _parse_block(lines, i, "]")
        else:
            container[key] = value
    return container, i


def read(path: Path) -> BicepFile:
    lines = [_code(line) for line in path.read_text("utf-8").splitlines()]
    parsed = BicepFile(path)
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if match := _PARAM.match(line):
            parsed.params[match.group(1)] = match.group(3)
        elif match := _HEAD.match(line):
            body, i = _parse_block(lines, i, "}")
            parsed.declarations.append(Declaration(*match.groups(), body))
    return parsed


def read_params(path: Path) -> tuple[str, dict[str, str]]:
    """A .bicepparam file: the template it is for, and each param's value (raw text; arrays
    and objects as their bracketed lines joined)."""
    text = "\n".join(_code(line) for line in path.read_text("utf-8").splitlines())
    using = re.search(r"^using\s+'([^']+)'", text, re.MULTILINE)
    assert using, f"{path}: no using line"
    values: dict[str, str] = {}
    for match in re.finditer(r"^param\s+(\w+)\s*=\s*(.*?)(?=^param\s|\Z)", text,
                             re.MULTILINE | re.DOTALL):
        values[match.group(1)] = " ".join(match.group(2).split())
    return using.group(1), values
