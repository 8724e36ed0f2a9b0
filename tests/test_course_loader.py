"""Bad content fails at load time with file, location and reason; check-content reports it."""

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.content import load_course
from dialogs.errors import ContentError
from tests.support.driver import FIXTURES

ROOT = Path(__file__).resolve().parent.parent


def broken_copy(tmp_path: Path, file: str, mutate: Callable[[Any], Any]) -> Path:
    root = tmp_path / "content"
    shutil.copytree(FIXTURES / "mini", root, symlinks=False)
    path = root / file
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    mutate(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return root


def step(data: dict, i: int) -> dict:
    return data["steps"][i]


CASES: list[tuple[str, str, Callable[[Any], Any], str, str]] = [
    ("missing translation", "sections/one.yaml", lambda d: step(d, 1)["prompt"].pop("zh"),
     "steps[1] (id m1.one.single).prompt.zh", "'zh' is missing"),
    ("empty text", "sections/one.yaml", lambda d: step(d, 0)["text"].update(en="  "),
     "steps[0] (id m1.one.intro).text.en", "text is empty"),
    ("two correct in a single choice", "sections/one.yaml",
     lambda d: step(d, 1)["options"][0].update(correct=True), "steps[1] (id m1.one.single)",
     "exactly one correct option, got 2"),
    ("no correct option", "sections/one.yaml",
     lambda d: step(d, 2)["options"][0].update(correct=False) or step(d, 2)["options"][2].update(correct=False),
     "steps[2] (id m1.one.multi)", "no option is marked correct"),
    ("next to nowhere", "sections/one.yaml", lambda d: step(d, 0).update(next="m1.one.nope"),
     "steps[0] (id m1.one.intro).next", "'m1.one.nope' is not a step of this section"),
    ("unreachable step", "sections/one.yaml", lambda d: step(d, 0).update(next="m1.one.multi"),
     "steps[1] (id m1.one.single)", "unreachable"),
    ("loop without exit", "sections/one.yaml", lambda d: step(d, 4).update(next="m1.one.intro"),
     "steps[0] (id m1.one.intro)", "dead end"),
    ("duplicate step id", "sections/one.yaml", lambda d: step(d, 2).update(id="m1.one.single"),
     "steps[2] (id m1.one.single)", "used twice"),
    ("step id without section prefix", "sections/one.yaml", lambda d: step(d, 2).update(id="other.multi"),
     "steps[2] (id other.multi)", "must start with the section id"),
    ("typo in a field", "sections/one.yaml", lambda d: step(d, 1)["options"][0].update(feedbak="x"),
     "steps[1] (id m1.one.single).options[0].feedbak", "unknown field 'feedbak'"),
    ("unknown step kind", "sections/one.yaml", lambda d: step(d, 1).update(kind="essay"),
     "steps[1] (id m1.one.single)", "'essay'"),
    ("predict options without the answer", "sections/one.yaml",
     lambda d: step(d, 4).update(options=["tensor([1.])", "tensor([2.])"]), "steps[4] (id m1.one.predict)",
     "must contain the 'answer'"),
    ("single-asterisk italics", "sections/one.yaml", lambda d: step(d, 0)["text"].update(en="A *leaf* tensor"),
     "steps[0] (id m1.one.intro).text.en", "single-asterisk italics are not supported"),
    ("words in a numbers-matched answer", "sections/one.yaml", lambda d: step(d, 4).update(answer="MulBackward0"),
     "steps[4] (id m1.one.predict)", "use 'match: exact'"),
    ("wrong solution names a missing check", "sections/two.yaml",
     lambda d: step(d, 0)["wrong_solutions"][0].update(fails="nope"), "steps[0] (id m1.two.square)",
     "check 'nope', which does not exist"),
    ("output without code", "sections/two.yaml", lambda d: step(d, 1).update(output="1"),
     "steps[1] (id m1.two.end)", "'output' needs 'code'"),
    ("no cards", "sections/two.yaml", lambda d: d.update(cards=[]), "", "needs flashcards"),
    ("section not in course.yaml", "course.yaml", lambda d: d["parts"][0]["sections"].remove("m1.two"), "id",
     "'m1.two' is not listed in course.yaml"),
    ("course lists a missing section", "course.yaml",
     lambda d: d["parts"][0]["sections"].append("m1.ghost"), "parts[0] (id m1).sections[2]",
     "no section with id 'm1.ghost'"),
    ("recap cadence out of range", "course.yaml", lambda d: d.update(recap_every=0), "recap_every",
     "greater than or equal to 1"),
]


@pytest.mark.parametrize(("name", "file", "mutate", "where", "reason"), CASES, ids=[c[0] for c in CASES])
def test_broken_content_fails_precisely(tmp_path: Path, name: str, file: str, mutate: Callable[[Any], Any],
                                        where: str, reason: str) -> None:
    root = broken_copy(tmp_path, file, mutate)
    with pytest.raises(ContentError) as info:
        load_course(root)
    err = info.value
    assert err.file.endswith(file) or name.startswith("section not"), str(err)
    assert err.location == where, str(err)
    assert reason in err.reason, str(err)


def test_duplicate_section_id_across_files(tmp_path: Path) -> None:
    root = broken_copy(tmp_path, "sections/two.yaml", lambda d: None)
    shutil.copy(root / "sections/one.yaml", root / "sections/copy.yaml")
    with pytest.raises(ContentError, match=r"section id 'm1\.one' is also used in"):
        load_course(root)


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    root = broken_copy(tmp_path, "sections/two.yaml", lambda d: None)
    (root / "sections/two.yaml").write_text("id: m1.two\ntitle: {en: x, zh: y\nsteps: []\n", encoding="utf-8")
    with pytest.raises(ContentError) as info:
        load_course(root)
    assert info.value.location.startswith("line ") and "YAML syntax" in info.value.reason


def test_ui_key_missing_in_one_language(tmp_path: Path) -> None:
    root = broken_copy(tmp_path, "sections/two.yaml", lambda d: None)
    ui = root / "ui"
    ui.unlink() if ui.is_symlink() else shutil.rmtree(ui)
    shutil.copytree(ROOT / "content/ui", ui)
    zh = ui / "zh.yaml"
    zh.write_text("\n".join(line for line in zh.read_text(encoding="utf-8").splitlines()
                            if not line.startswith("btn_go:")), encoding="utf-8")
    with pytest.raises(ContentError) as info:
        load_course(root)
    assert info.value.file.endswith("zh.yaml") and info.value.location == "btn_go"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False)


def test_check_content_cli_accepts_good_and_names_the_problem_in_bad(tmp_path: Path) -> None:
    good = run_cli("check-content", str(FIXTURES / "mini"))
    assert good.returncode == 0, good.stderr
    assert "the course is valid" in good.stdout and "total: 2 sections" in good.stdout
    root = broken_copy(tmp_path, "sections/one.yaml", lambda d: step(d, 1)["prompt"].pop("zh"))
    bad = run_cli("check-content", str(root))
    assert bad.returncode == 1
    assert "one.yaml: steps[1] (id m1.one.single).prompt.zh: 'zh' is missing" in bad.stderr
