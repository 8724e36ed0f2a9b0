"""The daily push in Telegram: a JobQueue job that sends what is due, and ``python -m bot push --now``.

The schedule lives in the database (each learner's next push instant, an indexed column), so a
restart loses nothing: one repeating job with a stable name asks the database every minute who is
due. A push missed while the bot was down is skipped by the engine rather than sent hours late.
Pacing under Telegram's limits is done by the Application's ``AIORateLimiter``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram.ext import Application, ContextTypes

log = logging.getLogger(__name__)
JOB_NAME = "daily-push"
TICK_SECONDS = 60


async def push_tick(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send the pushes that are due now."""
    shell = context.application.bot_data["shell"]
    sent = await shell.tutor.push(shell.push_sender)
    if sent:
        log.info("daily push: %d learners", sent)


def install_push_job(app: Application, interval: float = TICK_SECONDS, first: float = 5) -> None:
    """(Re)install the push job; a stable name means a restart or a second call never duplicates it."""
    queue = app.job_queue
    if queue is None:
        raise RuntimeError("python-telegram-bot was installed without its job-queue extra")
    for job in queue.get_jobs_by_name(JOB_NAME):
        job.schedule_removal()
    queue.run_repeating(push_tick, interval=interval, first=min(first, interval), name=JOB_NAME)


async def push_now(app: Application, chats: Sequence[int] | None = None) -> int:
    """Send every learner (or ``chats``) their push right now, whatever the time of day."""
    shell = app.bot_data["shell"]
    return await shell.tutor.push(shell.push_sender, force=True, chats=chats)
