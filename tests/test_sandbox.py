"""The sandbox's contract with the engine: real torch, hidden checks, readable feedback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.sandbox import Sandbox, SandboxConfig
from dialogs.evaluation import CheckSpec, EvalOutcome

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

REPO = Path(__file__).resolve().parents[1]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(workers=2, wall_seconds=3.0)) as sb:
        yield sb


def code(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


SQUARE = code(
    """
    import torch
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x ** 2).sum()
    y.backward()
    print("grad:", x.grad.tolist())
    """
)

MY_RELU = code(
    """
    import torch

    class MyReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output * (x > 0).to(grad_output.dtype)
    """
)

GRADCHECK = CheckSpec(
    "gradcheck",
    code(
        """
        import torch
        inp = torch.tensor([-1.5, -0.3, 0.4, 2.0], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(MyReLU.apply, (inp,)), "gradcheck failed"
        """
    ),
)


async def test_a_correct_autograd_submission_passes(sandbox: Sandbox) -> None:
    outcome = await sandbox.evaluate(
        SQUARE,
        [
            CheckSpec("grad", "assert x.grad.tolist() == [2.0, 4.0, 6.0], f'got {x.grad.tolist()}'"),
            CheckSpec("leaf", "assert x.is_leaf and not y.is_leaf"),
        ],
    )
    assert outcome.status == "ok", outcome
    assert outcome.passed
    assert [c.id for c in outcome.checks] == ["grad", "leaf"]
    assert outcome.stdout == "grad: [2.0, 4.0, 6.0]\n"
    assert outcome.duration_ms < 3000


async def test_a_failing_check_reports_its_message(sandbox: Sandbox) -> None:
    outcome = await sandbox.evaluate(
        "import torch\nx = torch.ones(2, requires_grad=True)\ny = (3 * x).sum()\n",
        [
            CheckSpec("no-backward-yet", "assert x.grad is not None, 'call y.backward() so that x.grad is filled'"),
            CheckSpec("type-error", "len(5)"),
            CheckSpec("bare-assert", "assert False"),
            CheckSpec("still-runs", "assert y.item() == 6.0"),
        ],
    )
    assert outcome.status == "ok"
    assert not outcome.passed
    details = {c.id: (c.passed, c.detail) for c in outcome.checks}
    assert details == {
        "no-backward-yet": (False, "call y.backward() so that x.grad is filled"),
        "type-error": (False, "TypeError: object of type 'int' has no len()"),
        "bare-assert": (False, "AssertionError"),
        "still-runs": (True, ""),
    }


async def test_a_check_detail_is_capped(sandbox: Sandbox) -> None:
    outcome = await sandbox.evaluate("", [CheckSpec("long", "assert False, 'x' * 10_000")])
    assert len(outcome.checks[0].detail) <= 500


async def test_an_exception_shows_only_the_learners_lines(sandbox: Sandbox) -> None:
    learner = code(
        """
        import torch

        def loss(w):
            return (w * 2).sum()

        w = torch.ones(3)
        loss(w).backward()
        """
    )
    outcome = await sandbox.evaluate(learner, [CheckSpec("never", "raise RuntimeError('must not run')")])
    assert outcome.status == "error"
    assert outcome.checks == ()
    assert outcome.error.startswith("Traceback (most recent call last):\n")
    assert 'File "<your code>", line 7, in <module>\n    loss(w).backward()' in outcome.error
    assert outcome.error.endswith(
        "RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn"
    )
    for foreign in ("harness", "worker", "torch/", "site-packages", "/sandbox"):
        assert foreign not in outcome.error


async def test_a_traceback_through_the_learners_functions(sandbox: Sandbox) -> None:
    outcome = await sandbox.evaluate("def f(n):\n    return 1 / n\n\nf(0)\n", [])
    assert outcome.error == (
        "Traceback (most recent call last):\n"
        '  File "<your code>", line 4, in <module>\n'
        "    f(0)\n"
        '  File "<your code>", line 2, in f\n'
        "    return 1 / n\n"
        "           ~~^~~\n"
        "ZeroDivisionError: division by zero"
    )


async def test_a_syntax_error_points_at_the_line(sandbox: Sandbox) -> None:
    outcome = await sandbox.evaluate("x = 1\ndef f(:\n    pass\n", [CheckSpec("c", "pass")])
    assert outcome.status == "error"
    assert 'File "<your code>", line 2' in outcome.error
    assert "SyntaxError" in outcome.error
    assert outcome.checks == ()


async def test_gradcheck_of_a_correct_custom_function_passes(sandbox: Sandbox) -> None:
    outcome = await sandbox.evaluate(MY_RELU, [GRADCHECK])
    assert outcome.passed, outcome


async def test_gradcheck_names_a_wrong_backward(sandbox: Sandbox) -> None:
    wrong = MY_RELU.replace("return grad_output * (x > 0).to(grad_output.dtype)", "return (x > 0).to(x.dtype)")
    assert wrong != MY_RELU
    outcome = await sandbox.evaluate(wrong, [GRADCHECK])
    assert outcome.status == "ok"
    assert not outcome.passed
    detail = outcome.checks[0].detail
    assert detail.startswith("GradcheckError: Jacobian mismatch for output 0 with respect to input 0"), detail


async def test_the_code_runs_as_main_in_one_namespace_with_the_checks(sandbox: Sandbox) -> None:
    learner = "import torch\nran_as = __name__\ncounter = [0]\n"
    outcome = await sandbox.evaluate(
        learner,
        [
            CheckSpec("main", "assert ran_as == '__main__'"),
            CheckSpec("bump", "counter[0] += 1"),
            CheckSpec("shared", "assert counter == [1], counter"),
            CheckSpec("torch", "assert torch.get_num_threads() == 1"),
        ],
    )
    assert outcome.passed, outcome


async def test_output_is_captured_from_both_streams(sandbox: Sandbox) -> None:
    outcome = await sandbox.evaluate("import sys\nprint('out')\nprint('err', file=sys.stderr)\nprint('out2')\n", [])
    assert outcome.status == "ok"
    assert outcome.stdout == "out\nerr\nout2\n"


async def test_sys_exit_zero_is_the_end_of_the_code_not_an_error(sandbox: Sandbox) -> None:
    outcome = await sandbox.evaluate("answer = 42\nimport sys\nsys.exit(0)\n", [CheckSpec("a", "assert answer == 42")])
    assert outcome.passed, outcome


async def test_an_outcome_survives_the_json_round_trip(sandbox: Sandbox) -> None:
    outcome = await sandbox.evaluate(SQUARE, [CheckSpec("a", "assert True")])
    assert EvalOutcome.from_dict(outcome.to_dict()) == outcome
    assert outcome.extra["isolation"] in ("bwrap", "none")


async def test_saturation_is_visible_while_every_worker_is_busy(sandbox: Sandbox) -> None:
    import asyncio

    assert not sandbox.is_saturated()
    runs = [asyncio.create_task(sandbox.evaluate("import time\ntime.sleep(0.5)\n", [])) for _ in range(2)]
    await asyncio.sleep(0.2)
    assert sandbox.is_saturated()
    assert all(o.status == "ok" for o in await asyncio.gather(*runs))
    assert not sandbox.is_saturated()


async def test_layers_describe_the_isolation(sandbox: Sandbox) -> None:
    layers = sandbox.layers()
    for key in ("bubblewrap", "no_network", "clean_environment", "rlimits", "wall_clock", "output_budget"):
        assert key in layers
    assert layers["wall_clock"].startswith("3 s")  # type: ignore[union-attr]


async def test_a_killed_worker_is_replaced(sandbox: Sandbox) -> None:
    import asyncio
    import signal

    victims = list(sandbox._workers)
    for worker in victims:
        os.kill(worker.proc.pid, signal.SIGKILL)  # bubblewrap (or the plain worker): the sandbox dies with it
    # Wait until they are really gone (their stderr closes): a worker still dying could accept the
    # next run and take it down with it, which is a crash, not a replacement.
    for worker in victims:
        assert worker.stderr_task is not None
        await asyncio.wait_for(asyncio.shield(worker.stderr_task), 10)
    outcome = await sandbox.evaluate(SQUARE, [CheckSpec("grad", "assert x.grad is not None")])
    assert outcome.passed, outcome
    for _ in range(100):
        if len(sandbox._workers) == 2 and not sandbox._spawning:
            break
        await asyncio.sleep(0.1)
    assert len(sandbox._workers) == 2
    assert not set(victims) & sandbox._workers


async def test_a_cancelled_evaluation_costs_only_its_worker(sandbox: Sandbox) -> None:
    import asyncio

    running = asyncio.create_task(sandbox.evaluate("import time\ntime.sleep(30)\n", []))
    await asyncio.sleep(0.3)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    outcome = await sandbox.evaluate(SQUARE, [CheckSpec("grad", "assert x.grad is not None")])
    assert outcome.passed, outcome


async def test_evaluate_waits_for_a_start_in_progress() -> None:
    import asyncio

    sb = Sandbox(SandboxConfig(workers=1, wall_seconds=3.0))
    starting = asyncio.create_task(sb.start())
    await asyncio.sleep(0)
    try:
        outcome = await sb.evaluate(SQUARE, [CheckSpec("grad", "assert x.grad is not None")])
        assert outcome.passed, outcome
        await starting
    finally:
        await sb.close()


async def test_not_started_is_unavailable_not_an_exception() -> None:
    outcome = await Sandbox(SandboxConfig(workers=1)).evaluate("print(1)", [])
    assert outcome.status == "unavailable"
    assert "not running" in outcome.error


async def test_start_fails_clearly_when_no_worker_can_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.sandbox import launch
    from dialogs.errors import SandboxUnavailable

    def broken(tmp_dir: str, uid: int, wipe_seconds: float = 2.0) -> launch.Launch:
        argv = [sys.executable, "-c", "import sys; sys.exit(3)"]
        return launch.Launch(argv=argv, env=launch.sandbox_env(), cwd=tmp_dir, isolation="none")

    monkeypatch.setattr(launch, "plain_launch", broken)
    sb = Sandbox(SandboxConfig(workers=1, use_bwrap=False))
    with pytest.raises(SandboxUnavailable, match="did not start"):
        await sb.start()
    outcome = await sb.evaluate("print(1)", [])
    assert outcome.status == "unavailable"
    await sb.close()


async def test_config_defaults() -> None:
    cfg = SandboxConfig()
    assert cfg.workers == (os.cpu_count() or 1)
    assert (cfg.wall_seconds, cfg.memory_mb, cfg.output_bytes, cfg.tmpfs_mb, cfg.use_bwrap) == (
        5.0,
        1024,
        65536,
        64,
        None,
    )
    with pytest.raises(ValueError):
        SandboxConfig(workers=0)


async def test_importing_the_sandbox_does_not_import_torch() -> None:
    probe = "import sys, bot.sandbox, bot.doctor; print('torch' in sys.modules, 'numpy' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["False", "False"]


async def test_doctor_proves_the_layers() -> None:
    import asyncio

    from bot.sandbox import launch

    program = (
        "from bot.doctor import run_doctor; from bot.sandbox import SandboxConfig; "
        "raise SystemExit(run_doctor(SandboxConfig(workers=1, wall_seconds=2, memory_mb=384)))"
    )
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    bwrap = launch.find_bwrap()
    isolated = bwrap is not None and launch.bwrap_self_test(bwrap, 64) is None
    assert "Layers:" in done.stdout and "Self-test:" in done.stdout
    assert "✓ a normal torch submission passes" in done.stdout
    assert "✓ a memory bomb is stopped" in done.stdout
    assert "✓ an endless loop is stopped" in done.stdout
    if isolated:
        assert done.returncode == 0, done.stdout
        assert "✓ the network is unreachable" in done.stdout
        assert "✓ a fake TELEGRAM_BOT_TOKEN in the bot's environment is unreadable" in done.stdout
    else:
        assert done.returncode == 1, done.stdout
