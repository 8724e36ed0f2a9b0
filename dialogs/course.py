"""The course: a pydantic schema of the YAML content, and how it is built from its documents, failing
with file, location and reason (the shell reads the files: ``bot/content.py``).

Layout of a content directory::

    course.yaml            title, recap cadence, parts -> section ids (the order of the course)
    <any>/<name>.yaml      one section each (steps, cards, mnemonic)
    ui/<lang>.yaml         UI strings, one file per language

Every learner-visible text is a ``Text``: a mapping with one entry per language (``en``, ``zh``).
Code is language-neutral; which terms the Chinese text keeps in English is content/glossary.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dialogs.errors import ContentError

LANGS: tuple[str, ...] = ("en", "zh")
ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
CARD_SLUG = re.compile(r"c-[a-z0-9]+(?:-[a-z0-9]+)*")  # a card id is "<section id>." + this
CARD_ID_MAX = 40  # card ids travel in Telegram buttons ("<seq>|card_show|<id>": 64 bytes at most)
END = "end"


_FENCED = re.compile(r"```.*?```", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_ITALIC = re.compile(r"(?<![*\w])\*(?!\s)[^*\n]+?(?<!\s)\*(?![*\w])")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(Strict):
    """A text in every language of the course."""

    en: str
    zh: str

    @field_validator("en", "zh")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty")
        prose = _INLINE_CODE.sub("", _FENCED.sub("", value)).replace("**", "")
        italic = _ITALIC.search(prose)
        if italic:
            raise ValueError(f"{italic.group(0)!r}: single-asterisk italics are not supported (use **bold**)")
        return value.strip("\n")

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


class Proof(Strict):
    """Code that our tests run with real torch to prove a claim.

    - ``output``: what the code must print (compared line by line, trailing spaces ignored);
    - ``raises`` (+ ``match``): the exception type name it must raise, and a fragment of its message;
    - neither: it must run without raising (its asserts carry the claim).
    """

    code: str
    output: str | None = None
    raises: str | None = None
    match: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Proof:
        if self.output is not None and self.raises is not None:
            raise ValueError("a proof claims either an output or an exception, not both")
        if self.match is not None and self.raises is None:
            raise ValueError("'match' needs 'raises'")
        return self


class Quote(Strict):
    """A short quote of the PyTorch docs, kept in English, with where it is from."""

    text: str
    source: str
    translation: str | None = None


class StepBase(Strict):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    point: Text  # the one-line takeaway, shown in recaps
    next: str | None = None  # a step id of the same section, or "end"; default: the following step
    tags: tuple[str, ...] = ()
    image: str | None = None  # a picture shipped with the content (path relative to content dir)


class Explain(StepBase):
    kind: Literal["explain"]
    text: Text
    code: str | None = None
    output: str | None = None  # the real output of ``code``; checked by the truth tests
    quote: Quote | None = None
    graph: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None  # draw this variable's graph
    #: show the pictures ``code`` makes (``torchviz.make_dot`` graphs, matplotlib figures), run in the sandbox
    picture: bool = False

    @model_validator(mode="after")
    def _graph_needs_code(self) -> Explain:
        if self.graph is not None and self.code is None:
            raise ValueError("'graph' needs 'code' that builds the graph")
        if self.picture and self.code is None:
            raise ValueError("'picture' needs 'code' that draws the picture")
        if self.picture and self.graph is not None:
            raise ValueError("a step shows either its 'graph' or its 'picture', not both")
        return self

    @model_validator(mode="after")
    def _output_needs_code(self) -> Explain:
        if self.output is not None and self.code is None:
            raise ValueError("'output' needs 'code' to come from")
        return self


class Ponder(Explain):
    """Think, then see: the learner is asked ``prompt`` first (any guess, or none, is fine; nothing is
    graded), then shown the explanation (``text``, ``code``, ``output``...) as an ``explain`` step."""

    kind: Literal["ponder"]  # type: ignore[assignment]
    prompt: Text


class Option(Strict):
    text: Text
    correct: bool = False
    feedback: Text
    proof: Proof | None = None


class Choice(StepBase):
    kind: Literal["choice"]
    prompt: Text
    quiz_prompt: Text | None = None  # the prompt in a /quiz, when ``prompt`` leans on the lesson ("Last round...")
    hint: Text | None = None  # a guiding question for ``hint`` (after a pointer to the lesson), never the answer
    code: str | None = None
    multi: bool = False
    options: tuple[Option, ...]

    @model_validator(mode="after")
    def _options(self) -> Choice:
        if not 2 <= len(self.options) <= 8:
            raise ValueError(f"a choice needs 2 to 8 options, got {len(self.options)}")
        right = sum(o.correct for o in self.options)
        if right == 0:
            raise ValueError("no option is marked correct: true")
        if not self.multi and right != 1:
            raise ValueError(f"a single choice has exactly one correct option, got {right} (set multi: true?)")
        return self


class Statement(Strict):
    text: Text
    answer: bool
    feedback: Text
    proof: Proof | None = None
    conceptual: bool = False  # no runnable proof: reviewed by hand

    @model_validator(mode="after")
    def _proof_or_conceptual(self) -> Statement:
        if self.proof is not None and self.conceptual:
            raise ValueError("a statement with a proof is not conceptual")
        return self


class Statements(StepBase):
    kind: Literal["statements"]
    prompt: Text
    quiz_prompt: Text | None = None  # the prompt in a /quiz, when ``prompt`` leans on the lesson ("Last round...")
    hint: Text | None = None  # a guiding question for ``hint`` (after a pointer to the lesson), never the answer
    code: str | None = None
    statements: tuple[Statement, ...]

    @model_validator(mode="after")
    def _count(self) -> Statements:
        if not 2 <= len(self.statements) <= 8:
            raise ValueError(f"a statements step needs 2 to 8 statements, got {len(self.statements)}")
        return self


class Predict(StepBase):
    """"What does this print?" The truth tests run ``code`` and compare with ``answer``."""

    kind: Literal["predict"]
    prompt: Text
    quiz_prompt: Text | None = None  # the prompt in a /quiz, when ``prompt`` leans on the lesson ("Last round...")
    hint: Text | None = None  # a guiding question for ``hint`` (after a pointer to the lesson), never the answer
    code: str
    answer: str  # exactly what ``code`` prints
    match: Literal["exact", "numbers"] = "numbers"
    accept: tuple[str, ...] = ()  # other typed answers that count as right
    options: tuple[str, ...] = ()  # optional: offer these as choices (one must equal ``answer``)
    right: Text
    wrong: Text

    @model_validator(mode="after")
    def _options_hold_answer(self) -> Predict:
        if self.options and self.answer not in self.options:
            raise ValueError("'options' must contain the 'answer' exactly")
        if self.match == "numbers" and not self.options and _words_beyond_numbers(self.answer):
            raise ValueError("the answer has words besides numbers, which 'match: numbers' would ignore "
                             "(e.g. SumBackward0 = MeanBackward0): use 'match: exact'")
        return self


_PRINTED_NOISE = re.compile(
    r"grad_fn=<\w+>|requires_grad=(?:true|false)|dtype=torch\.\w+|device='[^']*'|tensor|true|false|none|nan|inf"
    r"|[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:e[-+]?\d+)?|[\s\[\](),.:]", re.I)


def _words_beyond_numbers(printed: str) -> bool:
    """Does a printed value hold more than numbers and tensor formatting?"""
    return bool(_PRINTED_NOISE.sub("", printed))


class Check(Strict):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    code: str
    says: Text  # what the check verifies, in human terms
    fail: Text  # what failing it usually means


class WrongSolution(Strict):
    code: str
    fails: str  # the id of the check it must fail, or "error"/"timeout"/...


class CodeTask(StepBase):
    kind: Literal["code"]
    prompt: Text
    starter: str | None = None
    checks: tuple[Check, ...]
    hints: tuple[Text, ...]
    solution: str
    wrong_solutions: tuple[WrongSolution, ...] = ()
    right: Text

    @model_validator(mode="after")
    def _shape(self) -> CodeTask:
        if not self.checks:
            raise ValueError("a code step needs at least one check")
        if len(self.hints) < 2:
            raise ValueError("a code step needs at least two hints (a guiding question, then a stronger hint)")
        ids = [c.id for c in self.checks]
        if len(set(ids)) != len(ids):
            raise ValueError("check ids repeat")
        for wrong in self.wrong_solutions:
            statuses = ("error", "timeout", "memory", "crashed", "output_limit")
            if wrong.fails not in ids and wrong.fails not in statuses:
                raise ValueError(f"wrong solution expects check {wrong.fails!r}, which does not exist")
        return self


Step = Annotated[Explain | Ponder | Choice | Statements | Predict | CodeTask, Field(discriminator="kind")]
QUESTION_KINDS = ("choice", "statements", "predict", "code")


class Card(Strict):
    """A flashcard. Its ``id`` (``<section id>.c-<slug>``) is what learners' decks and review logs refer
    to: never change or reuse one without a migration entry (``dialogs/migrations``)."""

    id: Annotated[str, Field(pattern=ID_PATTERN)]
    q: Text
    a: Text


class Section(Strict):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    title: Text
    steps: tuple[Step, ...]
    cards: tuple[Card, ...]
    mnemonic: Text

    @model_validator(mode="after")
    def _basics(self) -> Section:
        if not self.steps:
            raise ValueError("a section needs steps")
        if not self.cards:
            raise ValueError("a section needs flashcards ('cards')")
        return self


class PartRef(Strict):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    title: Text
    sections: tuple[str, ...]


class CourseFile(Strict):
    title: Text
    recap_every: int = Field(default=3, ge=1, le=20)
    parts: tuple[PartRef, ...]


class UiFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    strings: dict[str, str]


@dataclass(frozen=True)
class Part:
    id: str
    title: Text
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Course:
    """The loaded, validated course, with lookups by id."""

    title: Text
    recap_every: int
    parts: tuple[Part, ...]
    ui: dict[str, dict[str, str]]  # lang -> key -> template
    root: str  # where the course was read from (pictures are named relative to it)

    def picture(self, name: str) -> str:
        """The path of a picture a step names."""
        return f"{self.root.rstrip('/')}/{name}"

    def sections(self) -> Iterator[Section]:
        for part in self.parts:
            yield from part.sections

    @property
    def section_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.sections())

    def section(self, section_id: str) -> Section:
        for s in self.sections():
            if s.id == section_id:
                return s
        raise KeyError(section_id)

    def part_of(self, section_id: str) -> Part:
        for part in self.parts:
            if any(s.id == section_id for s in part.sections):
                return part
        raise KeyError(section_id)

    @cached_property
    def _cards(self) -> dict[str, Card]:
        return {card.id: card for s in self.sections() for card in s.cards}

    @cached_property
    def card_ids(self) -> frozenset[str]:
        """Every flashcard's id."""
        return frozenset(self._cards)

    def card(self, card_id: str) -> Card:
        """The flashcard with this id (KeyError when the course has none)."""
        return self._cards[card_id]

    def step(self, section_id: str, step_id: str) -> Any:
        for st in self.section(section_id).steps:
            if st.id == step_id:
                return st
        raise KeyError(step_id)

    def next_section(self, section_id: str) -> str | None:
        ids = self.section_ids
        i = ids.index(section_id)
        return ids[i + 1] if i + 1 < len(ids) else None

    def t(self, lang: str, key: str, **values: Any) -> str:
        """A UI string in ``lang`` with ``{placeholders}`` filled in."""
        template = self.ui.get(lang, {}).get(key) or self.ui["en"][key]
        return template.format(**values) if values else template


def next_step_id(section: Section, index: int) -> str:
    """Where step ``index`` of ``section`` leads: a step id or END."""
    step = section.steps[index]
    if step.next is not None:
        return step.next
    return section.steps[index + 1].id if index + 1 < len(section.steps) else END


# ---------------------------------------------------------------------------------------------------
# Building the course from its documents (the shell reads the files: bot/content.py)


def _describe_location(data: Any, loc: tuple[Any, ...]) -> str:
    """Turn a pydantic location into something an author finds: steps[2] (id p1.x.q1).options[0]."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            label = f"[{key}]"
            if isinstance(node, list) and 0 <= key < len(node):
                node = node[key]
                if isinstance(node, dict) and isinstance(node.get("id"), str):
                    label += f" (id {node['id']})"
            else:
                node = None
            parts.append(label)
        else:
            if isinstance(node, dict):
                if key in ("explain", "choice", "statements", "predict", "code") and "kind" in node:
                    continue  # the discriminator's branch name adds nothing for the author
                node = node.get(key)
            else:
                node = None
            parts.append(("." if parts else "") + str(key))
    return "".join(parts)


def validate(model: type[BaseModel], data: Any, where: str) -> Any:
    """``data`` (a document read from ``where``) as ``model``; ContentError naming the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = f"'{err['loc'][-1]}' is missing"
        elif err["type"] == "extra_forbidden":
            msg = f"unknown field '{err['loc'][-1]}'"
        raise ContentError(where, _describe_location(data, tuple(err["loc"])), msg + more) from None


def _check_section_graph(section: Section, path: str) -> None:
    ids = [s.id for s in section.steps]
    seen: set[str] = set()
    for i, sid in enumerate(ids):
        if sid in seen:
            raise ContentError(path, f"steps[{i}] (id {sid})", f"step id {sid!r} is used twice")
        seen.add(sid)
        if not sid.startswith(section.id + "."):
            raise ContentError(path, f"steps[{i}] (id {sid})",
                               f"step ids must start with the section id '{section.id}.'")
    for i, step in enumerate(section.steps):
        if step.next is not None and step.next != END and step.next not in seen:
            raise ContentError(path, f"steps[{i}] (id {step.id}).next",
                               f"'{step.next}' is not a step of this section (or 'end')")
    # reachability from the first step
    index = {sid: i for i, sid in enumerate(ids)}
    reached: set[str] = set()
    todo = [ids[0]]
    while todo:
        sid = todo.pop()
        if sid in reached or sid == END:
            continue
        reached.add(sid)
        todo.append(next_step_id(section, index[sid]))
    for i, sid in enumerate(ids):
        if sid not in reached:
            raise ContentError(path, f"steps[{i}] (id {sid})",
                               "unreachable: no step leads here (check the 'next' fields before it)")
    # every step must reach the end (no loop without an exit)
    for i, sid in enumerate(ids):
        walked: set[str] = set()
        cur = sid
        while cur != END:
            if cur in walked:
                raise ContentError(path, f"steps[{i}] (id {sid})",
                                   "dead end: following 'next' from here loops and never ends the section")
            walked.add(cur)
            cur = next_step_id(section, index[cur])


def _check_cards(section: Section, path: str, seen: dict[str, str]) -> None:
    """Card ids: ``<section id>.c-<slug>``, short, unique in the whole course (``seen``: id -> where)."""
    for i, card in enumerate(section.cards):
        where = f"cards[{i}] (id {card.id})"
        if card.id in seen:
            raise ContentError(path, where, f"card id {card.id!r} is used twice (also {seen[card.id]})")
        seen[card.id] = f"{path} {where}"
        slug = card.id.removeprefix(section.id + ".")
        if slug == card.id or not CARD_SLUG.fullmatch(slug):
            raise ContentError(path, where, f"card ids are '{section.id}.c-<slug>' (lowercase words "
                                                 f"joined by '-'), e.g. '{section.id}.c-where-grad-lands'")
        if len(card.id) > CARD_ID_MAX:
            raise ContentError(path, where, f"card id longer than {CARD_ID_MAX} characters "
                                                 "(it travels in Telegram buttons): shorten the slug")


def check_section(data: Any, where: str, seen_cards: dict[str, str]) -> Section:
    """One section document: its schema, its step graph, its card ids (``seen_cards``: id -> where)."""
    section: Section = validate(Section, data, where)
    _check_section_graph(section, where)
    _check_cards(section, where, seen_cards)
    return section


def build_ui(documents: dict[str, tuple[str, Any]]) -> dict[str, dict[str, str]]:
    """The UI strings, ``{lang: (where, document)}``; both languages must have the same keys."""
    ui: dict[str, dict[str, str]] = {}
    for lang in LANGS:
        if lang not in documents:
            raise ContentError(f"ui/{lang}.yaml", "", f"the UI strings for '{lang}' are missing")
        where, data = documents[lang]
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ContentError(where, "", "expected a mapping of key: text")
        ui[lang] = {str(k): v for k, v in data.items()}
    missing = set(ui["en"]) ^ set(ui["zh"])
    if missing:
        key = sorted(missing)[0]
        lang = "zh" if key in ui["en"] else "en"
        raise ContentError(documents[lang][0], key, "key missing in this language")
    return ui


def build_course(course: tuple[str, Any], sections: list[tuple[str, Any]], ui: dict[str, tuple[str, Any]],
                 root: str, has_file: Callable[[str], bool]) -> Course:
    """The course from its documents, each with where it was read (``course.yaml``, the section files,
    the UI strings); ``has_file`` says whether a picture a step names exists under ``root``. Raises
    ContentError on the first problem, with file, location and reason."""
    course_where, course_data = course
    meta: CourseFile = validate(CourseFile, course_data, course_where)
    strings = build_ui(ui)
    by_id: dict[str, tuple[Section, str]] = {}
    card_ids: dict[str, str] = {}
    for where, data in sections:
        section: Section = validate(Section, data, where)
        if section.id in by_id:
            raise ContentError(where, "id", f"section id {section.id!r} is also used in {by_id[section.id][1]}")
        _check_section_graph(section, where)
        _check_cards(section, where, card_ids)
        for i, step in enumerate(section.steps):
            if step.image is not None and not has_file(step.image):
                raise ContentError(where, f"steps[{i}] (id {step.id}).image", f"no file {step.image}")
        by_id[section.id] = (section, where)

    parts: list[Part] = []
    listed: set[str] = set()
    part_ids: set[str] = set()
    for pi, ref in enumerate(meta.parts):
        if ref.id in part_ids:
            raise ContentError(course_where, f"parts[{pi}] (id {ref.id})", "part id used twice")
        part_ids.add(ref.id)
        found = []
        for si, sid in enumerate(ref.sections):
            if sid not in by_id:
                raise ContentError(course_where, f"parts[{pi}] (id {ref.id}).sections[{si}]",
                                   f"no section with id {sid!r} in {root}")
            if sid in listed:
                raise ContentError(course_where, f"parts[{pi}] (id {ref.id}).sections[{si}]",
                                   f"section {sid!r} is listed twice")
            listed.add(sid)
            found.append(by_id[sid][0])
        if not found:
            raise ContentError(course_where, f"parts[{pi}] (id {ref.id})", "a part needs sections")
        parts.append(Part(ref.id, ref.title, tuple(found)))
    for sid, (_, where) in by_id.items():
        if sid not in listed:
            raise ContentError(where, "id", f"section {sid!r} is not listed in course.yaml (unreachable)")
    return Course(meta.title, meta.recap_every, tuple(parts), strings, root)
