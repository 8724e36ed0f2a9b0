"""``python -m bot [chat|serve|check-content|doctor]`` — with no command: ``serve`` when a Telegram
token is configured, the terminal ``chat`` otherwise."""

from __future__ import annotations

import argparse
import asyncio
import locale
import logging
import os
import sys
import time
from pathlib import Path

from bot.config import Settings
from dialogs.errors import ContentError

log = logging.getLogger("bot")


def _setup_logging(settings: Settings, quiet: bool) -> None:
    level = logging.WARNING if quiet else getattr(logging, settings.log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load_course(settings: Settings):
    from bot.content import load_course

    try:
        return load_course(settings.content_dir)
    except ContentError as exc:
        print(f"content error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _sandbox(settings: Settings):
    from bot.sandbox import Sandbox

    return Sandbox(settings.sandbox_config())


def cmd_check_content(args: argparse.Namespace, settings: Settings) -> int:
    from bot.content import load_course
    from dialogs.ask import AskIndex
    from dialogs.stats import course_report

    root = Path(args.dir) if args.dir else settings.content_dir
    try:
        course = load_course(root)
    except ContentError as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    report, problems = course_report(course)
    print(report)
    started = time.perf_counter()
    index = AskIndex(course)
    print(f"free questions: {len(index.passages)} passages indexed in {(time.perf_counter() - started) * 1000:.0f} ms")
    for p in problems:
        print(f"! {p}")
    print(f"✓ {root}: the course is valid" + (f" ({len(problems)} sections below the bar)" if problems else ""))
    return 0


def _console_lang() -> str | None:
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    loc = locale.getlocale()[0] or ""
    return "zh" if loc.lower().startswith("zh") else None


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.console import chat, for_terminal
    from bot.service import Tutor
    from bot.storage import Repository

    course = _load_course(settings)
    repo = Repository(settings.db_url, settings.db_pool())
    log.info("terminal chat; database %s", repo.safe_url)

    async def main() -> int:
        sandbox = _sandbox(settings)
        starting = asyncio.create_task(sandbox.start())
        try:
            tutor = Tutor(for_terminal(course), repo, sandbox)  # the terminal's wording: no buttons to tap
            return await chat(tutor, f"console:{args.learner}", args.lang or _console_lang(),
                              graphs_dir=settings.data_dir / "graphs")
        finally:
            # Let a start in progress finish (a second or two) rather than cancel it mid-spawn, which would
            # leave a worker's pipes to be collected after the loop is gone.
            await asyncio.wait({starting}, timeout=60)
            if not starting.done():
                starting.cancel()
            elif not starting.cancelled() and starting.exception() is not None:
                log.warning("the code sandbox did not start: %s", starting.exception())
            await sandbox.close()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        print("\n👋")
        return 0
    finally:
        repo.close()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.token:
        print("TELEGRAM_BOT_TOKEN is not set (environment or .env); `python -m bot chat` runs the terminal chat.",
              file=sys.stderr)
        return 2
    from bot.telegram.app import run_bot

    course = _load_course(settings)
    return run_bot(settings, course)


def cmd_push(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.token:
        print("TELEGRAM_BOT_TOKEN is not set (environment or .env).", file=sys.stderr)
        return 2
    if not args.now:
        print("Pushes are sent by the running bot at each learner's time; `push --now` sends them right now.",
              file=sys.stderr)
        return 2
    from bot.storage import Repository
    from bot.telegram.app import build_application
    from bot.telegram.push import push_now

    course = _load_course(settings)
    repo = Repository(settings.db_url, settings.db_pool())

    async def main() -> int:
        app = build_application(settings, course, repo, None)
        await app.initialize()
        try:
            pushed = await push_now(app, args.chat or None)
            left = await app.bot_data["shell"].sender.stop(timeout=120)  # send them now (the outbox)
            if left:
                print(f"{left} message(s) wait in the outbox; the running bot sends them", file=sys.stderr)
            return pushed
        finally:
            await app.shutdown()

    try:
        sent = asyncio.run(main())
    finally:
        repo.close()
    print(f"pushed to {sent} learner(s)")
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from bot.doctor import run_doctor

    return run_doctor(settings.sandbox_config(workers=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Autograd Tutor")
    sub = parser.add_subparsers(dest="command")
    p_chat = sub.add_parser("chat", help="the terminal chat")
    p_chat.add_argument("--learner", default="local", help="whose progress to use (default: local)")
    p_chat.add_argument("--lang", choices=["en", "zh"], help="language for a new learner")
    sub.add_parser("serve", help="the Telegram bot (needs TELEGRAM_BOT_TOKEN)")
    p_check = sub.add_parser("check-content", help="validate the course YAML and report its size")
    p_check.add_argument("dir", nargs="?", help="content directory (default: CONTENT_DIR or ./content)")
    sub.add_parser("doctor", help="which sandbox isolation layers are active, with a self-test")
    p_push = sub.add_parser("push", help="send the daily push now (operators, tests)")
    p_push.add_argument("--now", action="store_true", help="send it now, whatever each learner's push time")
    p_push.add_argument("--chat", type=int, action="append", help="only this chat id (repeatable)")
    args = parser.parse_args(argv)
    settings = Settings()
    command = args.command or ("serve" if settings.token else "chat")
    if command == "chat" and args.command is None:
        args.learner, args.lang = "local", None
    _setup_logging(settings, quiet=command in ("chat", "check-content"))
    handler = {"chat": cmd_chat, "serve": cmd_serve, "check-content": cmd_check_content, "doctor": cmd_doctor,
               "push": cmd_push}
    from bot.storage.repo import StorageUnavailable

    try:
        return handler[command](args, settings)
    except StorageUnavailable as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
