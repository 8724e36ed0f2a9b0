"""Reading the course from its directory of YAML files (the schema and every check are in
``dialogs/course.py``, which reads no file). Bad content fails at start-up with file, location and reason.

Layout of a content directory::

    course.yaml            title, recap cadence, parts -> section ids (the order of the course)
    <any>/<name>.yaml      one section each (steps, cards, mnemonic)
    ui/<lang>.yaml         UI strings, one file per language
    glossary.yaml          the Chinese vocabulary (tests/test_glossary.py reads it), not a section
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dialogs.course import LANGS, Course, Section, build_course, check_section
from dialogs.errors import ContentError

GLOSSARY = "glossary.yaml"  # at the content root: the Chinese vocabulary, not a section


def default_content_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "content"


def read_yaml(path: Path) -> Any:
    """One YAML document; ContentError with the line and column of a syntax error."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ContentError(str(path), where, f"YAML syntax: {exc.problem or exc}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ContentError(str(path), "", f"cannot read: {exc}") from None


def load_course(root: str | Path) -> Course:
    """Load and validate the course under ``root``; raise ContentError on the first problem."""
    root = Path(root)
    course_path = root / "course.yaml"
    if not course_path.exists():
        raise ContentError(str(course_path), "", "no course.yaml in the content directory")
    ui: dict[str, tuple[str, Any]] = {}
    for lang in LANGS:
        path = root / "ui" / f"{lang}.yaml"
        if not path.exists():
            raise ContentError(str(path), "", f"the UI strings for '{lang}' are missing")
        ui[lang] = (str(path), read_yaml(path))
    sections = [(str(path), read_yaml(path)) for path in sorted(root.rglob("*.yaml"))
                if path.relative_to(root).parts[0] != "ui" and path not in (course_path, root / GLOSSARY)]
    return build_course((str(course_path), read_yaml(course_path)), sections, ui, str(root),
                        lambda name: (root / name).is_file())


def load_section_file(path: str | Path) -> Section:
    """Validate one section file on its own (schema and step graph), for authors and tools."""
    path = Path(path)
    return check_section(read_yaml(path), str(path), {})
