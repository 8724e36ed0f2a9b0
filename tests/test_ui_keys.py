"""Every UI string the code asks for exists in both languages, and keys are never built at run time.

The code is read, not run: each call ``t(..., "key")`` / ``vary(..., "key")`` / ``t("key")`` with a
literal key, and each value of a module-level ``*_KEYS`` table, must name a key of ``content/ui/en.yaml``
and ``content/ui/zh.yaml``; a key made with an f-string is refused (name it in a table instead).
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
UI = {lang: yaml.safe_load((ROOT / "content" / "ui" / f"{lang}.yaml").read_text(encoding="utf-8"))
      for lang in ("en", "zh")}
LOOKUPS = ("t", "vary")


def sources() -> list[Path]:
    return sorted([*(ROOT / "dialogs").rglob("*.py"), *(ROOT / "bot").rglob("*.py")])


def key_argument(call: ast.Call) -> ast.expr | None:
    """The argument of a lookup call that holds the key: ``t(lang, key)`` or ``t(key)``."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name not in LOOKUPS or not call.args:
        return None
    if len(call.args) >= 2:
        return call.args[1]
    return call.args[0] if isinstance(func, ast.Name) else None


def used_keys() -> tuple[dict[str, str], list[str]]:
    """Literal keys (key -> where) and keys built at run time (where)."""
    keys: dict[str, str] = {}
    built: list[str] = []
    for path in sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                arg = key_argument(node)
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    keys.setdefault(arg.value, f"{where}:{node.lineno}")
                elif isinstance(arg, ast.JoinedStr):
                    built.append(f"{where}:{node.lineno}")
            elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                  and any(isinstance(t, ast.Name) and t.id.endswith("_KEYS") for t in node.targets)):
                for value in node.value.values:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        keys.setdefault(value.value, f"{where}:{node.lineno}")
                    else:
                        built.append(f"{where}:{node.lineno} (a table value that is not a literal)")
    return keys, built


def test_both_languages_have_the_same_keys() -> None:
    assert set(UI["en"]) ^ set(UI["zh"]) == set()


def test_every_key_the_code_uses_exists() -> None:
    keys, _ = used_keys()
    assert len(keys) > 100  # the scan sees the code
    missing = {f"{key} ({where})" for key, where in keys.items() if key not in UI["en"] or key not in UI["zh"]}
    assert missing == set()


def test_no_key_is_built_at_run_time() -> None:
    _, built = used_keys()
    assert built == []


def test_the_scan_would_see_a_missing_key(tmp_path: Path) -> None:
    sample = ast.parse('self.t(s, "no_such_key")\nt("other_missing")\nself.t(s, f"status_{x}")\n')
    calls = [key_argument(node) for node in ast.walk(sample) if isinstance(node, ast.Call)]
    literal = {a.value for a in calls if isinstance(a, ast.Constant)}
    assert literal == {"no_such_key", "other_missing"}
    assert any(isinstance(a, ast.JoinedStr) for a in calls)
