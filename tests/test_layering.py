"""The architecture's rules, checked: dialogs/ is pure, and the bot process never imports torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What the pure core may import: the standard library's pure parts, its own modules, and the few
#: libraries it is built on. No I/O (os, pathlib, socket, subprocess...), no clock (time), no randomness,
#: no shell (bot, telegram, sqlmodel), no torch.
ALLOWED_IN_DIALOGS = {
    "__future__", "dataclasses", "typing", "re", "math", "unicodedata", "collections", "collections.abc",
    "enum", "itertools", "functools", "datetime", "zoneinfo", "zlib", "json", "array",
    "pydantic", "fsrs",
    "snowballstemmer",  # English stemming for free questions (dialogs/ask.py): pure Python, no I/O
    "base64", "binascii",  # a lesson figure's PNG travels as base64 text in the sandbox's outcome (dialogs/pictures.py)
}
#: Known exceptions, each with its reason (to shrink, never to grow silently). None left: the course's
#: files are read by the shell (bot/content.py).
EXCEPTIONS: dict[str, set[str]] = {}
#: Calls that read the clock, files or the terminal (the time and random modules are not importable).
FORBIDDEN_CALLS = {"now", "utcnow", "today", "open", "input", "print", "monotonic", "read_text",
                   "write_text", "read_bytes", "write_bytes"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def dialogs_modules() -> list[Path]:
    return sorted(p for p in (ROOT / "dialogs").rglob("*.py"))


def test_dialogs_imports_only_what_the_allowlist_names() -> None:
    bad = set()
    for path in dialogs_modules():
        allowed = ALLOWED_IN_DIALOGS | EXCEPTIONS.get(path.name, set())
        for module in imported_modules(path):
            if module == "dialogs" or module.startswith("dialogs."):
                continue
            if module not in allowed and module.split(".")[0] not in allowed:
                bad.add(f"{path.relative_to(ROOT)}: {module}")
    assert bad == set()


def test_dialogs_reads_no_clock_no_file_no_terminal() -> None:
    bad = set()
    for path in dialogs_modules():
        if path.name in EXCEPTIONS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                if name in FORBIDDEN_CALLS:
                    bad.add(f"{path.relative_to(ROOT)}:{node.lineno}: {name}()")
    assert bad == set()


def test_the_allowlist_bites() -> None:
    """The checks above would see a forbidden import and a clock read."""
    sample = ROOT / "tests" / "fixtures" / "impure_sample.py"
    assert {"os", "time", "bot.service"} <= imported_modules(sample)
    calls = {node.func.attr for node in ast.walk(ast.parse(sample.read_text())) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute)}
    assert "now" in calls


def test_the_bot_process_never_imports_torch() -> None:
    code = ("import sys, bot.__main__, bot.console, bot.service, bot.telegram.app, bot.telegram.push, "
            "bot.sandbox, bot.storage, dialogs.engine; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_dialogs_has_no_import_cycle() -> None:
    """Modules of dialogs/ import each other one way only (the engine's parts never import the engine)."""
    names = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for p in dialogs_modules()}
    graph = {name: {m for m in imported_modules(path) if m in names} for name, path in names.items()}
    for name, path in names.items():  # "from dialogs import deck" names a module too
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in names:
                graph[name] |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in names}

    def visit(name: str, path: tuple[str, ...]) -> None:
        for dep in graph[name]:
            assert dep not in path, " -> ".join((*path, dep))
            visit(dep, (*path, dep))

    for name in graph:
        visit(name, (name,))
    assert "dialogs.engine" not in {dep for deps in graph.values() for dep in deps}
