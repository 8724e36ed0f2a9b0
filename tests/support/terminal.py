"""Run the real ``python -m bot chat`` process and talk to it through a pipe, like a learner."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class ChatProcess:
    def __init__(self, db: Path, *args: str, content: Path | None = None, env: dict[str, str] | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_BOT_TOKEN", "LANG", "LC_ALL")}
        full_env.update(DATABASE_URL=f"sqlite:///{db}", PYTHONUNBUFFERED="1", NO_COLOR="1",
                        SANDBOX_WORKERS="1", PYTHONIOENCODING="utf-8")
        if content is not None:
            full_env["CONTENT_DIR"] = str(content)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "chat", *args], cwd=ROOT, env=full_env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", bufsize=1,
            start_new_session=True,
        )
        self.out = ""
        self.cursor = 0
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for chunk in iter(lambda: self.proc.stdout.read(1), ""):  # type: ignore[union-attr]
            with self._lock:
                self.out += chunk

    def expect(self, fragment: str, timeout: float = 30.0) -> str:
        """Wait until ``fragment`` appears after the cursor; return the text up to it and move past it."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                i = self.out.find(fragment, self.cursor)
                if i >= 0:
                    seen = self.out[self.cursor:i + len(fragment)]
                    self.cursor = i + len(fragment)
                    return seen
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"process exited ({self.proc.returncode}) before {fragment!r}:\n"
                                         f"{self.out[self.cursor:][-3000:]}\nstderr:\n{self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {fragment!r}; recent output:\n{self.out[-3000:]}")
            time.sleep(0.01)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the whole process group: no chance to save anything on the way out."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)
        self._close_pipes()

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None or self.proc.stderr.closed:
            return ""
        return self.proc.stderr.read()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()

    def __enter__(self) -> ChatProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()
        else:
            self._reader.join(5)
            self._close_pipes()
