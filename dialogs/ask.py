"""Free questions answered from the course's own verified text: retrieval, never generation.

``AskIndex(course)`` builds, once, a BM25 index over every step (its explanation, prompt, options and
their feedback, statements, quoted docs, code and the errors its proofs raise) and every flashcard, in
both languages. ``search(question, lang)`` returns the best passages, best first.

Tokens: English words are lower-cased and stemmed (``snowballstemmer``); identifiers are kept whole
and also split (``retain_graph`` -> ``retain_graph``, ``retain``, ``graph``); Chinese runs are cut into
character bigrams (the CJK analysers of Lucene and Elasticsearch do the same: no dictionary to load,
robust to terms the dictionary lacks); a small glossary (``SYNONYMS``) maps the Chinese words for
autograd's ideas onto one English token, so ``叶子节点`` finds a passage that says ``leaf`` and back.
Pasted torch errors lose what is the learner's own (numbers, shapes, names in quotes, file paths)
before they are searched.

Pure: no I/O, no clock; the index is immutable once built.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import snowballstemmer

from dialogs import answers
from dialogs.actions import Action, button
from dialogs.context import Host, Out
from dialogs.course import Card, Choice, CodeTask, Course, Ponder, Predict, Statements
from dialogs.state import LearnerState
from dialogs.steps.lines import vary

# One English token for each of autograd's ideas, with the ways people write it in Chinese (and the
# English variants that should meet it). Matched as substrings of Chinese runs, longest first.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "leaf": ("叶子节点", "叶子张量", "叶节点", "叶子", "非叶子", "is_leaf"),
    "graph": ("计算图", "动态图", "静态图", "图"),
    "grad": ("梯度", "导数", "gradient", "gradients", "grads", "偏导"),
    "backward": ("反向传播", "反传", "反向", "backprop", "backpropagation"),
    "forward": ("前向传播", "前向", "正向"),
    "requires_grad": ("需要梯度", "要梯度", "requires grad", "require grad"),
    "no_grad": ("不追踪", "关闭梯度", "不记录", "no grad"),
    "detach": ("分离", "断开", "剥离", "detached"),
    "inplace": ("原地操作", "原地", "就地", "in-place", "in place", "in_place"),
    "version": ("版本计数器", "版本号", "版本", "_version"),
    "hook": ("钩子", "hooks", "register_hook"),
    "retain_graph": ("保留计算图", "保留图", "保留", "retain graph"),
    "create_graph": ("创建图", "create graph", "高阶导", "二阶导", "高阶", "二阶", "higher order", "second order",
                     "hessian"),
    "broadcast": ("广播", "自动广播", "broadcasting"),
    "accumulate": ("累加", "累积", "积累", "accumulates", "accumulated", "accumulation"),
    "zero_grad": ("清零", "置零", "归零", "zero grad"),
    "view": ("视图", "views"),
    "scalar": ("标量",),
    "vector": ("向量",),
    "jacobian": ("雅可比", "雅克比"),
    "chain": ("链式法则", "链式"),
    "gradcheck": ("梯度检查", "数值梯度", "有限差分", "finite difference"),
    "function": ("自定义函数", "自定义算子", "autograd.function"),
    "save_for_backward": ("保存张量", "saved tensors", "saved_tensors"),
    "grad_fn": ("反向函数", "节点", "node", "nodes"),
    "memory": ("内存", "显存"),
    "optimizer": ("优化器", "optim"),
    "loss": ("损失",),
    "weight": ("权重", "参数", "parameter", "parameters", "weights"),
    "dtype": ("整数", "浮点", "float", "integer", "int"),
    "data": (".data",),
    "clone": ("复制", "拷贝", "副本", "copy"),
    "error": ("报错", "错误", "异常", "error", "exception", "runtimeerror"),
    "none": ("空的", "是空", "为空"),
    "warning": ("警告", "userwarning"),
    "output": ("输出",),
    "input": ("输入",),
    "shape": ("形状", "维度", "size"),
    "sum": ("求和",),
    "mask": ("掩码",),
    "relu": ("激活",),
    "debug": ("调试", "排查"),
    "interview": ("面试",),
    "dynamic": ("动态",),
    "once": ("第二次", "两次", "再次", "twice", "second time"),
    "free": ("释放", "freed", "释放掉"),
}

_EN_STOP_WORDS = (
    "a an the is are was were be been being do does did doing to of in on at by for with from as and or "
    "not no it its this that these those i you we they he she me my your our what why how when where "
    "which who whom can could should would will shall may might must have has had having there here than "
    "then so if else just only also very too about into over under out up down again once more most some "
    "any all each both few such own same other s t don doesn isn aren wasn weren didn won cant dont "
    "doesnt isnt im get got gets getting make makes made use used using work works working thing things "
    "something one want need like know tell explain mean means happen happens happened still really even "
    "ever always torch pytorch tensor tensors please pls help hi hey ok okay "
)
EN_STOP = frozenset(_EN_STOP_WORDS.split())
ZH_STOP = frozenset("的了吗呢吧啊是在和与或就都也还要会能可以这那个么什为怎样如何哪里我你他她它们")

HAN = re.compile(r"[\u3400-\u9fff]+")
WORD = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*")
# The learner's own bits of a pasted error: numbers, shapes, hex addresses, quoted names, file paths.
NOISE = re.compile(r"0x[0-9a-f]+|\[[\d,\s]*\]|\(\d[\d,\s]*\)|'[^'\n]{0,40}'|\"[^\"\n]{0,40}\"|/[\w./-]+"
                   r"|(?<![\w.])\d+(?:\.\d+)?")

PASTED = re.compile(r"Traceback \(most recent call last\)|\b[A-Z]\w*(?:Error|Warning|Exception)\b:")
#: How a pasted error ends: its last line names the exception (code that merely raises one does not).
ERROR_LAST = re.compile(r"^\s*(?:[\w.]+\.)?[A-Z]\w*(?:Error|Warning|Exception)\b:?", re.MULTILINE)
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
QUESTION_START = re.compile(r"^(why|what|whats|how|when|where|which|who|whom|can|could|should|would|shall|"
                            r"explain|tell me|difference|wtf|wth|help|is there|are there|do i|does it|do we)\b",
                            re.IGNORECASE)
ZH_QUESTION = re.compile(r"为什么|为啥|怎么|怎样|如何|什么|啥|吗[？?。\s]*$|呢[？?。\s]*$|是不是|能不能|有没有|"
                         r"区别|哪个|哪里|哪些|请问|解释一下|干嘛|作用")
CODE_LINE = re.compile(r"^\s*(def|class|import|from|return|with|for|if|@)\b|^\s*[\w.\[\]]+\s*[-+*/]?=[^=]|:\s*$",
                       re.MULTILINE)
WHY_HOW = re.compile(r"为什么|为啥|怎么|如何|什么")
PRINTED = re.compile(r"\d|tensor\s*\(|\b(none|true|false)\b|error", re.IGNORECASE)
_INDEXES: dict[int, tuple[Course, AskIndex]] = {}

_stemmer = snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=20000)
def _stem(word: str) -> str:
    return str(_stemmer.stemWord(word))

_ZH_TERMS = sorted(((z, en) for en, zs in SYNONYMS.items() for z in zs if HAN.fullmatch(z)), key=lambda p: -len(p[0]))
_EN_TERMS = {alias: en for en, zs in SYNONYMS.items() for alias in zs if not HAN.search(alias)}


def _english(words: Iterable[str]) -> Iterator[str]:
    for word in words:
        alias = _EN_TERMS.get(word)
        if alias:
            yield alias
        bare = word.rstrip("0123456789")
        if bare != word and len(bare) > 1:
            yield bare  # MulBackward0 meets "MulBackward"
        parts = [p for p in re.split(r"[._]", word) if p]
        if len(parts) > 1:
            yield word
        for part in parts:
            if part not in EN_STOP and len(part) > 1:
                yield _stem(part)


def _chinese(run: str) -> Iterator[str]:
    for term, en in _ZH_TERMS:
        if term in run:
            yield en
    chars = [c for c in run if c not in ZH_STOP]
    if len(chars) == 1:
        yield chars[0]
    for a, b in itertools.pairwise(chars):
        yield a + b


def _synonym_bigrams(text: str) -> set[str]:
    """The character bigrams inside the Chinese synonyms a text uses (叶子节点: 叶子, 子节, 节点)."""
    found: set[str] = set()
    for run in HAN.findall(text):
        for term, _ in _ZH_TERMS:
            if term in run:
                chars = [c for c in term if c not in ZH_STOP]
                found.update(a + b for a, b in itertools.pairwise(chars))
    return found


def tokens(text: str) -> list[str]:
    """The search tokens of a text, in either language (or both mixed)."""
    low = text.lower()
    for phrase, en in _EN_TERMS.items():
        if " " in phrase and phrase in low:
            low = low.replace(phrase, f" {en} ")
    words = list(_english(WORD.findall(HAN.sub(" ", low))))
    out = words + [f"{a}+{b}" for a, b in itertools.pairwise(words) if a != b]
    for run in HAN.findall(low):
        out.extend(_chinese(run))
    return out


def clean_error(text: str) -> str:
    """A pasted error or warning without the learner's own numbers, shapes, names and paths (a plain
    question keeps its quoted words: they are what it asks about)."""
    if not PASTED.search(text):
        return NUMBER.sub(" ", text)
    return NOISE.sub(" ", text)


def index_for(course: Course) -> AskIndex:
    """The course's index, built once per loaded course."""
    held = _INDEXES.get(id(course))
    if held is None or held[0] is not course:
        held = (course, AskIndex(course))
        _INDEXES[id(course)] = held
    return held[1]


def reads_as_question(text: str) -> bool:
    """Does a message read as a question (or a pasted error), rather than as an answer?"""
    t = text.strip()
    if PASTED.search(t):
        return True
    words = re.findall(r"[A-Za-z\u3400-\u9fff]+", t)
    if ZH_QUESTION.search(t):
        return True
    if QUESTION_START.match(t) and len(words) >= 3:
        return True
    return t.endswith(("?", "？")) and len(words) >= 3


def reads_as_answer(step: Any, text: str) -> bool:
    """Can ``text`` be read as an answer to this question (so that it is graded, not answered)?"""
    if isinstance(step, Ponder):
        return True  # think-then-see: whatever comes is the learner's guess
    if isinstance(step, Choice):
        return answers.parse_choice(text, len(step.options)) is not None
    if isinstance(step, Statements):
        return bool(answers.parse_judgements(text, len(step.statements)))
    if isinstance(step, CodeTask):
        lines = [line for line in text.strip().splitlines() if line.strip()]
        pasted = text.lstrip().startswith("Traceback") or bool(lines and ERROR_LAST.match(lines[-1]))
        return looks_like_code(text) and not pasted
    if isinstance(step, Predict):
        if step.options and answers.parse_choice(text, len(step.options)) is not None:
            return True
        said = answers.normalise(text)
        if any(answers.normalise(option) == said for option in (*step.options, step.answer, *step.accept)):
            return True
        # "I think it's tensor([2.])?" is a guess; "why is it 2?" is a question
        asks = QUESTION_START.match(text.strip()) or WHY_HOW.search(text) or PASTED.search(text)
        return not asks and bool(PRINTED.search(text))
    return False


def clearly_a_question(text: str) -> bool:
    """A question beyond doubt (where an answer may end in "?" or "吗"): a pasted error, or a why/how/what
    question of a few words."""
    t = text.strip()
    words = re.findall(r"[A-Za-z\u3400-\u9fff]+", t)
    return bool(PASTED.search(t) or WHY_HOW.search(t) or (QUESTION_START.match(t) and len(words) >= 3))


def looks_like_code(text: str) -> bool:
    return "```" in text or bool(CODE_LINE.search(text))


@dataclass(frozen=True)
class Passage:
    """One searchable thing: a step or a flashcard, with what to show of it."""

    id: str
    section: str
    kind: str  # "step" or "card"
    title: dict[str, str]  # per language: the step's point or the card's question
    body: dict[str, str]  # per language: the card's answer, or the step's point


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
    coverage: float = 1.0  # the share of the question's words (by weight) the passage holds


def _text(value: Any, lang: str) -> str:
    return value.get(lang) if value is not None else ""


def _step_fields(step: Any, lang: str) -> list[str]:
    """What a learner's words may meet in a step, in one language (code and errors in both)."""
    parts = [_text(step.point, lang), _text(getattr(step, "text", None), lang),
             _text(getattr(step, "prompt", None), lang)]
    parts.append(getattr(step, "code", None) or "")
    quote = getattr(step, "quote", None)
    if quote is not None:
        parts.append(quote.text)
    for option in getattr(step, "options", ()) or ():
        if hasattr(option, "feedback"):
            parts += [_text(option.text, lang), _text(option.feedback, lang)]
            parts += _proof(option.proof)
    for statement in getattr(step, "statements", ()) or ():
        parts += [_text(statement.text, lang), _text(statement.feedback, lang)]
        parts += _proof(statement.proof)
    for check in getattr(step, "checks", ()) or ():
        parts.append(_text(check.says, lang))
    output = getattr(step, "output", None)
    if output:
        parts.append(output)
    return parts


def _proof(proof: Any) -> list[str]:
    if proof is None:
        return []
    return [proof.raises or "", proof.match or "", proof.output or ""]


class AskIndex:
    """BM25 (k1 1.2, b 0.9) over the course's steps and cards, one index per learner language.

    A passage's document holds its own language's text twice (its weight) and the other language's once,
    so a Chinese question with English terms in it still meets the English words of the same step."""

    K1, B = 1.2, 0.9
    TITLE = 0.5  # the boost of a section title holding all the question's words

    def __init__(self, course: Course) -> None:
        self.course = course
        self.passages: list[Passage] = []
        self._seen: dict[str, list[str]] = {}
        docs: dict[str, list[Counter[str]]] = {"en": [], "zh": []}
        self._titles: dict[str, dict[str, frozenset[str]]] = {lang: {} for lang in docs}
        for section in course.sections():
            heading = {lang: [section.title.get(lang)] for lang in docs}
            for lang in docs:
                self._titles[lang][section.id] = frozenset(tokens(section.title.get(lang)))
            for step in section.steps:
                self.passages.append(Passage(step.id, section.id, "step",
                                             {lang: step.point.get(lang) for lang in ("en", "zh")},
                                             {lang: step.point.get(lang) for lang in ("en", "zh")}))
                for lang in docs:
                    own = _step_fields(step, lang) + heading[lang]
                    docs[lang].append(self._doc(own, _step_fields(step, _other(lang))))
            for card in section.cards:
                self.passages.append(self._card_passage(section.id, card))
                for lang in docs:
                    docs[lang].append(self._doc([card.q.get(lang), card.a.get(lang), *heading[lang]],
                                                [card.q.get(_other(lang)), card.a.get(_other(lang))], weight=3))
        self._seen.clear()
        # token -> doc ids and term counts, interleaved in one array of 16-bit numbers (the index is a
        # few hundred documents; this keeps it at about 4 MB instead of 17 MB of tuples)
        self._postings: dict[str, dict[str, array[int]]] = {}
        self._norm: dict[str, list[float]] = {}
        for lang, counted in docs.items():
            postings: dict[str, array[int]] = defaultdict(lambda: array("H"))
            for i, doc in enumerate(counted):
                for token, tf in doc.items():
                    postings[token].extend((i, min(tf, 65535)))
            lengths = [sum(doc.values()) for doc in counted]
            avg = sum(lengths) / max(1, len(lengths))
            self._postings[lang] = dict(postings)
            self._norm[lang] = [self.K1 * (1 - self.B + self.B * length / avg) for length in lengths]

    def _idf(self, lang: str, token: str) -> float | None:
        found = self._postings[lang].get(token)
        if found is None:
            return None
        df, n = len(found) // 2, len(self._norm[lang])
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    @staticmethod
    def _card_passage(section_id: str, card: Card) -> Passage:
        return Passage(card.id, section_id, "card", {lang: card.q.get(lang) for lang in ("en", "zh")},
                       {lang: card.a.get(lang) for lang in ("en", "zh")})

    def _doc(self, own: list[str], other: list[str], weight: int = 2) -> Counter[str]:
        counted: Counter[str] = Counter()
        for text in own:
            for token in self._tokens(text):
                counted[token] += weight
        for text in other:
            counted.update(self._tokens(text))
        return counted

    def _tokens(self, text: str) -> list[str]:
        """``tokens``, once per distinct text while the index is built (each is met in both indexes)."""
        found = self._seen.get(text)
        if found is None:
            found = self._seen[text] = tokens(text)
        return found

    def search(self, question: str, lang: str, k: int = 3, hide: frozenset[str] = frozenset()) -> list[Hit]:
        """The ``k`` best passages for a question (none of ``hide``, ids of steps and cards)."""
        lang = lang if lang in self._postings else "en"
        question = clean_error(question)
        query = Counter(tokens(question))
        postings, norm = self._postings[lang], self._norm[lang]
        # the characters of a synonym the course does not write (its glossary keeps one form: the learner's
        # 叶子节点 is the course's leaf) are not words the question misses: the synonym's concept stands in
        for token in _synonym_bigrams(question):
            if token not in postings:
                query.pop(token, None)
        weights = {t: self._idf(lang, t) for t in query}
        scores: dict[int, float] = defaultdict(float)
        for token, qtf in query.items():
            weight = weights[token]
            if weight is None:
                continue
            found = postings[token]
            for i, tf in zip(found[::2], found[1::2], strict=True):
                scores[i] += weight * tf * (self.K1 + 1) / (tf + norm[i]) * (1 + math.log(qtf))
        rare = math.log(1 + (len(norm) + 0.5) / 0.5)  # what a word the course never uses weighs
        mass = sum(rare if w is None else w for w in weights.values()) or 1.0
        titles = self._titles[lang]
        for i in [i for i in scores if self.passages[i].id in hide]:
            del scores[i]
        for i in scores:  # a passage of the section whose title is the question ranks a little higher
            title = titles[self.passages[i].section]
            scores[i] *= 1 + self.TITLE * sum(w for t, w in weights.items() if w is not None and t in title) / mass
        best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        hits = []
        for i, score in best:
            met = sum(w for t, w in weights.items() if w is not None and i in postings[t][::2])
            hits.append(Hit(self.passages[i], score, met / mass))
        return hits


def _other(lang: str) -> str:
    return "zh" if lang == "en" else "en"


# -- answering in the chat -------------------------------------------------------------------------

#: When the best passage is an answer: a strong BM25 score or most of the question's words (weighted by
#: how rare they are in the course), and never when it holds less than a share of them (a pasted error,
#: long and full of the learner's own words, is judged on its score). Calibrated on
#: tests/fixtures/questions.yaml and the off-topic questions of bench/ask.py.
MIN_SCORE, ENOUGH_COVERAGE, MIN_COVERAGE = 8.0, 0.6, 0.3


def relevant(hit: Hit, question: str) -> bool:
    if hit.score < MIN_SCORE and hit.coverage < ENOUGH_COVERAGE:
        return False
    return hit.coverage >= MIN_COVERAGE or bool(PASTED.search(question))
SHOWN = 3


def unsaid(host: Host, s: LearnerState) -> frozenset[str]:
    """What a free answer must not show now: at a code task, the rest of its section and the section's
    flashcards (they sum up what the task asks the learner to find)."""
    if s.phase not in ("question", "retry", "evaluating") or s.section is None or s.step is None:
        return frozenset()
    section = host.course.section(s.section)
    ids = [st.id for st in section.steps]
    if s.step not in ids or not isinstance(section.steps[ids.index(s.step)], CodeTask):
        return frozenset()
    return frozenset(ids[ids.index(s.step):]) | {card.id for card in section.cards}


def answer(host: Host, s: LearnerState, question: str, out: Out, then: str = "") -> LearnerState:
    """Answer a free question with the course's own passages, each with a way to go there. When the course
    has nothing on it, say so, name the nearest topics, and add ``then`` (what the learner can do now)."""
    index = index_for(host.course)
    hide = unsaid(host, s)
    hits = index.search(question[:2000], s.lang, k=SHOWN, hide=hide)
    if not hits or not relevant(hits[0], question):
        near = index.search(question[:2000], s.lang, k=8, hide=hide)
        sections = list(dict.fromkeys(h.passage.section for h in near))[:3]
        if not sections:
            sections = [sid for sid in host.course.section_ids if sid not in s.done_sections][:3]
        topics = ", ".join(f"{host.section_label(sid)} · {host.course.section(sid).title.get(s.lang)}"
                           for sid in sections)
        out.say(host.t(s, "ask_none", topics=topics) + (f"\n\n{then}" if then else ""))
        return s.but(ask_hits=tuple(sections))
    hits = [h for h in hits if h.score >= hits[0].score / 3]
    blocks = []
    for n, hit in enumerate(hits, 1):
        p = hit.passage
        label = host.section_label(p.section)
        title = host.course.section(p.section).title.get(s.lang)
        text = f"❓ {p.title[s.lang]}\n💡 {p.body[s.lang]}" if p.kind == "card" else f"💡 {p.body[s.lang]}"
        blocks.append(host.t(s, "ask_item", n=n, label=label, title=title, text=text))
    buttons = tuple(button(host.t(s, "btn_ask_go", n=n, label=host.section_label(h.passage.section)),
                           Action.GOTO, h.passage.id) for n, h in enumerate(hits, 1))
    keyboard = (buttons, (button(host.t(s, "btn_ask_back"), Action.RESUME),))
    header, s = vary(host, s, "ask_header")
    text = header + "\n\n" + "\n\n".join(blocks) + "\n\n" + host.t(s, "ask_footer")
    out.say(text, keyboard, seq=s.seq)
    return s.but(ask_hits=tuple(h.passage.id for h in hits))
