"""Child process of tests.support.truth: imports torch once, runs claims from stdin, prints JSON."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback
import warnings
from typing import Any


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _exec(code: str, ns: dict[str, Any]) -> tuple[str, BaseException | None]:
    buf = io.StringIO()
    err: BaseException | None = None
    with contextlib.redirect_stdout(buf), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            exec(compile(code, "<claim>", "exec"), ns)
        except BaseException as exc:  # the claim's own exception is data here
            err = exc
    return buf.getvalue(), err


def _checks(code: str, checks: list[dict[str, str]]) -> tuple[str | None, dict[str, str | None]]:
    ns: dict[str, Any] = {"__name__": "__main__"}
    _, err = _exec(code, ns)
    if err is not None:
        return f"{type(err).__name__}: {err}", {}
    results: dict[str, str | None] = {}
    for check in checks:
        _, cerr = _exec(check["code"], ns)
        results[check["id"]] = None if cerr is None else f"{type(cerr).__name__}: {cerr}"
    return None, results


def run(claim: dict[str, Any]) -> str | None:
    import torch

    torch.manual_seed(0)
    torch.set_grad_enabled(True)
    kind, code, expect = claim["kind"], claim["code"], claim["expect"]
    if kind in ("output", "runs", "raises"):
        out, err = _exec(code, {"__name__": "__main__"})
        if kind == "raises":
            want, fragment = expect
            if err is None:
                return f"expected {want} but nothing was raised"
            if type(err).__name__ != want:
                return f"expected {want}, got {type(err).__name__}: {err}"
            if fragment not in str(err):
                return f"{want} raised, but its message lacks {fragment!r}: {err}"
            return None
        if err is not None:
            return "raised " + "".join(traceback.format_exception_only(err)).strip()
        if kind == "output" and _lines(out) != _lines(expect):
            return f"prints:\n{out.rstrip()}\n-- but the content claims:\n{expect.rstrip()}"
        return None
    if kind == "solution":
        err, results = _checks(code, expect)
        if err:
            return f"the reference solution raised {err}"
        failed = {k: v for k, v in results.items() if v}
        return f"the reference solution fails checks: {failed}" if failed else None
    if kind == "wrong":
        checks, fails = expect
        err, results = _checks(code, checks)
        if fails == "error":
            return None if err else "the wrong solution was expected to raise, but ran"
        if err:
            return f"the wrong solution raised {err} before check {fails!r} could fail"
        if fails not in results:
            return f"no check {fails!r}"
        return None if results[fails] else f"the wrong solution passes check {fails!r} (it should fail)"
    return f"unknown claim kind {kind}"


def main() -> None:
    claims = json.loads(sys.stdin.read())
    import torch  # noqa: F401  (imported once, before any claim)

    problems = [run(c) for c in claims]
    sys.stdout.write("\n" + json.dumps(problems) + "\n")


if __name__ == "__main__":
    main()
