"""The Chinese text of the course follows one vocabulary: content/glossary.yaml names, per concept, the
form to use and the forms to avoid (see the file's header for the rule and how it is read).

Every zh text is checked: each bilingual Text of every section (titles, steps, options, statements, checks,
hints, cards, mnemonics), quote translations, the course and part titles, and the zh UI strings. Code
(`...` and fenced blocks) and English quotations (“...” or "..." without Chinese) are not prose and are
never checked. ASCII double quotes never wrap Chinese (Chinese quotes are “”).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from bot.content import GLOSSARY, load_course
from dialogs.course import Course, Quote, Text
from tests.support.driver import FIXTURES

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "content"

# the concepts the glossary must decide (issue 14)
REQUIRED = {"leaf", "non-leaf", "tensor", "in-place", "graph", "gradient", "node", "hook", "version counter",
            "view", "broadcast", "scalar", "quotation marks"}

CJK = re.compile(r"[\u4e00-\u9fff]")
FENCED = re.compile(r"```.*?```", re.S)
INLINE_CODE = re.compile(r"`[^`\n]+`")
QUOTED = re.compile(r"“[^“”\n]*”|\"[^\"\n]*\"")
ASCII_QUOTED = re.compile(r"\"[^\"\n]*\"")


def without_code(text: str) -> str:
    return INLINE_CODE.sub(" ", FENCED.sub(" ", text))


def prose(text: str) -> str:
    """What the vocabulary applies to: no code, no English quotation (a docs sentence, an error message)."""
    return QUOTED.sub(lambda m: m.group(0) if CJK.search(m.group(0)) else " ", without_code(text))


def form_pattern(form: str) -> re.Pattern[str]:
    """A Chinese form anywhere; a Latin form as a whole word, any case, not inside a code-like token
    (`torch.Tensor`, `/graph`, `{nodes}`, `gradient=`, `non-leaf` for `leaf`)."""
    if not form.isascii():
        return re.compile(re.escape(form))
    body = r"\s+".join(re.escape(w) for w in form.split())
    return re.compile(r"(?<![\w./{`=-])" + body + r"(?![\w(}`=.-])", re.IGNORECASE)


class Glossary:
    def __init__(self, data: dict[str, Any]) -> None:
        self.terms: dict[str, dict[str, Any]] = data["terms"]
        self._allow = [form_pattern(a) for t in self.terms.values() for a in t.get("allow", [])]
        # longest first: 非叶子张量 is one misuse (非叶子), not three
        avoid = [(concept, form) for concept, t in self.terms.items() for form in t["avoid"]]
        self._avoid = [(c, f, form_pattern(f)) for c, f in sorted(avoid, key=lambda cf: -len(cf[1]))]

    def misuses(self, text: str) -> list[tuple[str, str, str]]:
        """(concept, avoided form, excerpt) for each avoided form in the prose of ``text``, in text order."""
        body = prose(text)
        masked = body
        for pat in self._allow:
            masked = pat.sub(lambda m: " " * len(m.group(0)), masked)
        found = []
        for concept, form, pat in self._avoid:
            for m in pat.finditer(masked):
                found.append((m.start(), concept, form, body[max(0, m.start() - 20):m.end() + 20].replace("\n", " ")))
            masked = pat.sub(lambda m: " " * len(m.group(0)), masked)
        return [(concept, form, excerpt) for _, concept, form, excerpt in sorted(found)]


def load_glossary() -> Glossary:
    return Glossary(yaml.safe_load((CONTENT / GLOSSARY).read_text(encoding="utf-8")))


def _walk(obj: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(obj, Text):
        yield where, obj.zh
    elif isinstance(obj, Quote):
        if obj.translation:
            yield where + ".translation", obj.translation
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _walk(getattr(obj, name), f"{where}.{name}")
    elif isinstance(obj, tuple | list):
        for i, item in enumerate(obj):
            yield from _walk(item, f"{where}[{i}]")


def chinese_texts(course: Course) -> list[tuple[str, str]]:
    """(where, zh text) for every learner-visible Chinese text of the course."""
    texts = [("course.title", course.title.zh)]
    for part in course.parts:
        texts.append((f"{part.id}.title", part.title.zh))
        for section in part.sections:
            texts.extend(_walk(section, section.id))
    texts.extend((f"ui/zh.yaml:{key}", value) for key, value in course.ui["zh"].items())
    return texts


@pytest.fixture(scope="module")
def texts() -> list[tuple[str, str]]:
    return chinese_texts(load_course(CONTENT))


def test_the_glossary_decides_every_concept() -> None:
    glossary = load_glossary()
    assert glossary.terms.keys() >= REQUIRED, f"undecided: {sorted(REQUIRED - glossary.terms.keys())}"
    for concept, term in glossary.terms.items():
        assert isinstance(term.get("use"), str) and term["use"].strip(), concept
        assert term.get("avoid") and all(isinstance(f, str) and f for f in term["avoid"]), concept
        assert isinstance(term.get("why"), str) and "\n" not in term["why"].strip(), f"{concept}: one line why"
        assert not set(term) - {"use", "avoid", "allow", "why"}, concept
        # the form to use is not itself avoided
        assert not Glossary({"terms": {concept: term}}).misuses(term["use"]), concept


def test_every_kind_of_chinese_text_is_checked(texts: list[tuple[str, str]]) -> None:
    places = " ".join(where for where, _ in texts)
    for kind in (".title", ".text", ".point", ".options[", ".feedback", ".statements[", ".cards[", ".q", ".a",
                 ".mnemonic", ".translation", ".hints[", ".says", "ui/zh.yaml:"):
        assert kind in places, f"no {kind} text was collected"
    assert len(texts) > 1500


def test_chinese_text_uses_the_glossary(texts: list[tuple[str, str]]) -> None:
    glossary = load_glossary()
    bad = [(where, *m) for where, text in texts for m in glossary.misuses(text)]
    report = "\n".join(f"{where}: {concept}: {form!r} in …{excerpt}…" for where, concept, form, excerpt in bad[:40])
    assert not bad, f"{len(bad)} forms the glossary avoids (content/glossary.yaml):\n{report}"


def test_ascii_quotes_never_wrap_chinese(texts: list[tuple[str, str]]) -> None:
    bad = [(where, m.group(0)) for where, text in texts for m in ASCII_QUOTED.finditer(without_code(text))
           if CJK.search(m.group(0))]
    assert not bad, "use “” around Chinese:\n" + "\n".join(f"{w}: {q}" for w, q in bad[:40])


@pytest.mark.parametrize(("text", "found"), [
    ("梯度落在叶子上", [("leaf", "叶子")]),
    ("它是非叶子张量", [("non-leaf", "非叶子张量")]),
    ("一个冒牌的非 leaf", [("non-leaf", "非 leaf")]),
    ("这并非 leaf 的错，它是 non-leaf", []),
    ("就像树叶：**leaf 张量**", []),
    ("一个 Tensor 和两个 tensors", [("tensor", "tensor"), ("tensor", "tensors")]),
    ("每个 torch.Tensor 的 `x.tensor` 属性；`tensor([1.])`", []),
    ("要原地修改", [("in-place", "原地")]),
    ("版本号加一，版本计数器不变", [("version counter", "版本号")]),
    ("**backward graph** 里", [("graph", "graph")]),
    ("/graph 命令，`retain_graph=True`，{nodes} 个节点，传 gradient=", []),
    ("报错 “Trying to backward through the graph a second time”", []),
    ("报错 “graph 被释放了”", [("graph", "graph")]),
    ("```python\n# 叶子\nx = torch.tensor(1.)\n```\n叶", [("leaf", "叶")]),
    ("你还没有学完「第一部分」", [("quotation marks", "「"), ("quotation marks", "」")]),
])
def test_the_check_finds_what_the_glossary_avoids(text: str, found: list[tuple[str, str]]) -> None:
    assert [(c, f) for c, f, _ in load_glossary().misuses(text)] == found


def test_ascii_quotes_are_paired_in_order() -> None:
    def wrapped(text: str) -> list[str]:
        return [m.group(0) for m in ASCII_QUOTED.finditer(without_code(text)) if CJK.search(m.group(0))]

    assert wrapped('叫它 "病人"') == ['"病人"']
    assert wrapped('"sum" 和 "mean" 两个变体') == []
    assert wrapped('`print("你好")` 打印问候') == []


def test_a_glossary_in_the_content_dir_is_not_a_section(tmp_path: Path) -> None:
    root = tmp_path / "content"
    shutil.copytree(FIXTURES / "mini", root)
    plain = load_course(root)
    shutil.copy(CONTENT / GLOSSARY, root / GLOSSARY)
    assert load_course(root).section_ids == plain.section_ids
