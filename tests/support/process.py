"""The real bot as a process (``python -m bot ...``): its environment, its stderr, start, kill and stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment with nothing of ours from the outside (token, database, content, language)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "WEBHOOK_", "DATABASE_URL", "CONTENT_DIR", "LANG", "LC_"))}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
               CONTENT_DIR=str(FIXTURES / "mini"), SANDBOX_WORKERS="1", PYTHONIOENCODING="utf-8")
    env.update(extra)
    return env


class Stderr:
    """Collects a process's stderr in a thread; ``wait_for`` finds a fragment in it."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.text = ""
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.run_in_executor(None, self._read)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.text += line
            self._loop.call_soon_threadsafe(self._changed.set)
        self._loop.call_soon_threadsafe(self._changed.set)

    async def wait_for(self, fragment: str, timeout: float = 30.0) -> None:
        async def found() -> None:
            while fragment not in self.text:
                if self.proc.poll() is not None and self._task.done():
                    raise AssertionError(f"exited ({self.proc.returncode}) before {fragment!r}:\n{self.text}")
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(found(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {fragment!r} in stderr within {timeout}s:\n{self.text}") from None

    async def finish(self) -> None:
        await self._task


class BotProcess:
    """``python -m bot <command>`` in its own session (so that it and whatever it started can be killed)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.args = args
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.err: Stderr | None = None
        self.logs: list[str] = []  # stderr of every run so far

    async def start(self, ready: str = "running as @", timeout: float = 60.0) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", *self.args], cwd=self.cwd, env=self.env, text=True,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.err = Stderr(self.proc)
        await self.err.wait_for(ready, timeout)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def wait(self) -> int:
        """Wait for the process to exit (its stderr kept in ``logs``); its exit status."""
        assert self.proc is not None and self.err is not None
        code = await asyncio.to_thread(self.proc.wait)
        await self.err.finish()
        self.logs.append(self.err.text)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code

    async def kill(self) -> None:
        """``kill -9`` of the bot process alone, as an OOM killer or a crash would; then whatever it had
        started is cleaned up too."""
        os.kill(self.pid, signal.SIGKILL)
        await self.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    async def terminate(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> tuple[int, float]:
        """Send ``sig``; the exit status and how long the process took to exit."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.wait(), timeout)
        return code, loop.time() - start

    async def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.pid, signal.SIGKILL)
            await self.wait()
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)

    @property
    def stderr(self) -> str:
        """Everything the runs so far and the current one wrote to stderr."""
        current = self.err.text if self.err is not None and self.proc is not None and self.proc.poll() is None else ""
        return "".join(self.logs) + current
