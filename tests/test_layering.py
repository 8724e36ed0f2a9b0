"""The architecture's rules, checked: dialogs/ is pure, and the bot process never imports torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_DIALOGS = ("bot", "telegram", "sqlmodel", "sqlalchemy", "torch", "numpy", "httpx", "socket",
                        "subprocess", "random", "time", "os")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_dialogs_imports_nothing_of_the_shell() -> None:
    bad = {f"{p.name}: {m}" for p in (ROOT / "dialogs").glob("*.py") for m in imported_modules(p)
           if m in FORBIDDEN_IN_DIALOGS}
    assert bad == set()


def test_the_bot_process_never_imports_torch() -> None:
    code = ("import sys, bot.__main__, bot.console, bot.service, bot.telegram.app, bot.telegram.push, "
            "bot.sandbox, bot.storage, dialogs.engine; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
