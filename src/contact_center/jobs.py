"""Background jobs on Huey: SQLite-backed and run inside `serve` by default, Redis-backed with
`contact-center worker` processes when CONTACT_CENTER_REDIS_URL is set.

Two queues: the urgent one (an operator's message, a customer's file, a read receipt) has a
worker of its own in every consumer, so it never waits behind a 100k campaign's batches; the
main one carries everything else, by priority."""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

from huey import Huey, PriorityRedisHuey, SqliteHuey, crontab

from contact_center.settings import Settings

log = logging.getLogger(__name__)
DISPATCH_CHUNK = 1000
# On the main queue, higher goes first.
HEARTBEAT, ROUTINE, BULK = 10, 5, 0
URGENT_QUEUE = "contact-center-urgent"
# An idle consumer looks for work at most this often. The urgent queue's wait is part of every
# operator's send; a poll of it is one indexed read of a small table.
URGENT_POLL_SECONDS = 0.1
RECONCILE_AFTER_SECONDS = 600  # a campaign's last states reach Kolmeya's report some minutes after it ends


def make_huey(settings: Settings, name: str = "contact-center") -> Huey:
    if settings.redis_url:
        return PriorityRedisHuey(name, url=settings.redis_url, results=False)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=str(settings.data_dir / "jobs.db"), results=False)


def make_jobs(settings: Settings) -> Jobs:
    return Jobs(make_huey(settings), urgent=make_huey(settings, URGENT_QUEUE))


# --- task bodies: they find the process's runtime, so they run the same in any worker -----------

def _dispatch_messages(message_ids: list[int]) -> None:
    _dispatch(message_ids, None)


def _dispatch(message_ids: list[int], campaign_id: int | None) -> None:
    """Send them; retries go back on the queue they came from (a campaign's on the main one)."""
    from contact_center.messaging.dispatch import dispatch
    from contact_center.runtime import current

    runtime = current()
    later = dispatch(runtime.session_factory, runtime.settings, message_ids, runtime.limiter)
    if campaign_id is None:
        runtime.jobs.schedule(later.retry, runtime.jobs.dispatch_later)
    else:
        runtime.jobs.schedule(later.retry, lambda ids, delay: runtime.jobs._dispatch_campaign.schedule(
            (campaign_id, ids), delay=delay))
    runtime.jobs.schedule(later.check, runtime.jobs.check_unknown_later)


def _check_unknown(message_ids: list[int] | None) -> None:
    from contact_center.messaging.reconcile import check_unknown
    from contact_center.runtime import current

    runtime = current()
    report = check_unknown(runtime.session_factory, runtime.settings, message_ids)
    if report.resend:
        runtime.jobs.dispatch(report.resend)
    runtime.jobs.schedule(report.waiting, runtime.jobs.check_unknown_later)


def _sweep() -> None:
    from contact_center.db import transaction
    from contact_center.messaging import media
    from contact_center.messaging.dispatch import sweep
    from contact_center.runtime import current
    from contact_center.webhooks.service import retry_failed_events

    runtime = current()
    with transaction(runtime.session_factory) as session:
        swept = sweep(session, runtime.settings)
        retried = retry_failed_events(session)
        lost_media = media.lost(session)
    if swept.send:
        log.warning("sweeper: re-enqueued %d message(s) whose job was lost", len(swept.send))
        runtime.jobs.dispatch(swept.send)
    if swept.check:
        log.info("sweeper: asking the provider about %d message(s) whose send has an unknown outcome",
                 len(swept.check))
        runtime.jobs.check_unknown(swept.check)
    if retried:
        log.info("sweeper: re-applied %d webhook event(s)", retried)
    if lost_media:
        log.info("sweeper: fetching %d customer file(s) whose job was lost", len(lost_media))
        runtime.jobs.fetch_media(lost_media)


def _fetch_media(message_ids: list[int]) -> None:
    from contact_center.messaging.media import fetch
    from contact_center.runtime import current

    runtime = current()
    report = fetch(runtime.session_factory, runtime.settings, message_ids)
    runtime.jobs.schedule(report.retry, runtime.jobs.fetch_media_later)


def _mark_read(channel_id: int, provider_message_id: str) -> None:
    from contact_center.messaging.read_receipts import send_read_receipt
    from contact_center.runtime import current

    runtime = current()
    send_read_receipt(runtime.session_factory, runtime.settings, channel_id, provider_message_id)


def _sync_templates() -> None:
    from contact_center.channels.whatsapp_templates import sync_all
    from contact_center.runtime import current

    runtime = current()
    sync_all(runtime.session_factory, runtime.settings)


def _remind_windows() -> None:
    from contact_center.messaging.window_reminder import remind_closing_windows
    from contact_center.runtime import current

    runtime = current()
    run = remind_closing_windows(runtime.session_factory)  # committed: only now is dispatch enqueued
    if run.message_ids:
        runtime.jobs.dispatch(run.message_ids)
    if run.by_channel or run.problems:
        log.info("window reminders: %d sent (%s)%s", len(run.message_ids),
                 ", ".join(f"{name}: {count}" for name, count in run.by_channel.items()) or "no channel",
                 f"; {len(run.problems)} channel(s) failed" if run.problems else "")


def _build_campaign(campaign_id: int) -> None:
    from contact_center.campaigns import service as campaigns
    from contact_center.runtime import current

    runtime = current()
    if campaigns.build(runtime.session_factory, runtime.settings, campaign_id):
        runtime.jobs.pump_campaign(campaign_id)


def _pump_campaign(campaign_id: int) -> None:
    """Release the campaign's next messages (committed), then enqueue their dispatch; each
    dispatch pumps the campaign again when it is done, so a campaign paces itself."""
    from contact_center.campaigns import service as campaigns
    from contact_center.db import transaction
    from contact_center.runtime import current

    runtime = current()
    with transaction(runtime.session_factory) as session:
        result = campaigns.pump(session, campaign_id)
    for start in range(0, len(result.released), DISPATCH_CHUNK):
        runtime.jobs._dispatch_campaign(campaign_id, result.released[start:start + DISPATCH_CHUNK])
    if not result.released and result.again_in is not None:
        runtime.jobs.pump_campaign_later(campaign_id, result.again_in)
    if result.completed:  # the provider's report has the states its callbacks may not have brought
        runtime.jobs.reconcile_campaign.schedule((campaign_id,), delay=RECONCILE_AFTER_SECONDS)


def _reconcile_campaign(campaign_id: int) -> None:
    from contact_center.messaging.report_reconcile import reconcile_campaign
    from contact_center.runtime import current

    runtime = current()
    reconcile_campaign(runtime.session_factory, runtime.settings, campaign_id)


def _dispatch_campaign(campaign_id: int, message_ids: list[int]) -> None:
    _dispatch(message_ids, campaign_id)
    _pump_campaign(campaign_id)


def _pump_campaigns() -> None:
    """Each minute: every running campaign looks again (its window may have opened, its chain of
    dispatches may have died with a worker), and a build that stopped is started over."""
    from contact_center.campaigns import service as campaigns
    from contact_center.db import transaction
    from contact_center.runtime import current

    runtime = current()
    with transaction(runtime.session_factory) as session:
        running, stuck = campaigns.running_campaigns(session), campaigns.stuck_building(session)
    for campaign_id in stuck:
        log.warning("campaign %d: its build stopped; building it again", campaign_id)
        runtime.jobs.build_campaign(campaign_id)
    for campaign_id in running:
        _pump_campaign(campaign_id)


def _sync_blacklist(contact_ids: list[int], channel_ids: list[int] | None = None, attempt: int = 1,
                    numbers: list[str] | None = None) -> None:
    from contact_center.contacts.blacklist import sync
    from contact_center.runtime import current

    runtime = current()
    run = sync(runtime.session_factory, runtime.settings, contact_ids, channel_ids, attempt, numbers)
    if run.retry_after is not None:
        runtime.jobs.sync_blacklist_later(contact_ids, run.retry_channel_ids, attempt + 1, run.retry_after, numbers)


def _run_contact_import(import_id: int, dry_run: bool) -> None:
    from contact_center.contacts.imports import run
    from contact_center.runtime import current

    runtime = current()
    run(runtime.session_factory, runtime.settings, import_id, dry_run)


def _poll_providers() -> None:
    from contact_center.messaging.recovery import poll_all_channels
    from contact_center.runtime import current

    runtime = current()
    poll_all_channels(runtime.session_factory, runtime.settings)


def _heartbeat_on(huey: Huey) -> Callable[[], None]:
    def heartbeat() -> None:
        from contact_center.metrics.health import beat

        beat(huey)

    return heartbeat


def _reconcile_reports() -> None:
    from contact_center.messaging.report_reconcile import reconcile_all
    from contact_center.runtime import current

    runtime = current()
    reconcile_all(runtime.session_factory, runtime.settings)  # does nothing without messages waiting


def _post_odoo_notes(message_ids: list[int], attempt: int = 1) -> None:
    from contact_center.odoo import config
    from contact_center.odoo.chatter import post_notes
    from contact_center.runtime import current

    runtime = current()
    if not config.configured(runtime.settings):
        return
    run = post_notes(runtime.session_factory, config.from_settings(runtime.settings), message_ids, attempt)
    if run.retry_after is not None:
        runtime.jobs._post_odoo_notes.schedule((run.retry, attempt + 1), delay=run.retry_after)


def _sync_odoo_if_due() -> None:
    """Each minute: the Odoo partner sync, when configured with an interval and that long has passed
    since the last run started (one run at a time, whatever the number of workers: sync.py's lease)."""
    from contact_center.odoo import config
    from contact_center.odoo.sync import sync_due, sync_partners
    from contact_center.runtime import current

    runtime = current()
    settings = runtime.settings
    if not settings.odoo_sync_interval_minutes or not config.configured(settings):
        return
    if not sync_due(runtime.session_factory, settings.odoo_sync_interval_minutes):
        return
    from contact_center.errors import DomainError

    try:
        sync_partners(runtime.session_factory, config.from_settings(settings))
    except DomainError:
        pass  # another run is going, or this one failed: logged (and recorded) by the sync; tried again when due
def _apply_retention() -> None:
    from contact_center.privacy.retention import apply_retention
    from contact_center.runtime import current

    runtime = current()
    apply_retention(runtime.session_factory, runtime.settings)  # does nothing while retention_days is 0


def _in_background(fn: Callable) -> Callable:
    """`fn` with its SQLite transactions marked as background work (db.WriteGate)."""
    from contact_center.db import background_writes

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with background_writes():
            return fn(*args, **kwargs)
    return run


class Jobs:
    """The tasks, bound to a process's queues: `huey`, and `urgent` for what an operator or a
    customer waits on (the same queue when only one is given, as in tests)."""

    def __init__(self, huey: Huey, urgent: Huey | None = None):
        self.huey = huey
        self.urgent = urgent or huey
        self._dispatch = self.urgent.task(name="dispatch_messages")(_dispatch_messages)
        self._fetch_media = self.urgent.task(name="fetch_media")(_fetch_media)
        self.mark_read = self.urgent.task(name="mark_read")(_mark_read)

        # Everything on the main queue is background work: it lets interactive writers go first.
        def task(name: str, fn: Callable, priority: int | None = None):
            return huey.task(name=name, priority=priority)(_in_background(fn))

        def periodic(when, name: str, fn: Callable, priority: int | None = None):
            return huey.periodic_task(when, name=name, priority=priority)(_in_background(fn))

        self._check_unknown = task("check_unknown", _check_unknown, ROUTINE)
        self._sweep = periodic(crontab(minute="*"), "sweep", _sweep)
        periodic(crontab(minute="*/5"), "poll_providers", _poll_providers)
        periodic(crontab(minute="*/10"), "reconcile_reports", _reconcile_reports)
        self.remind_windows = periodic(crontab(minute="*"), "remind_closing_windows", _remind_windows)
        periodic(crontab(minute="17"), "sync_whatsapp_templates", _sync_templates)  # hourly
        # A consumer's sign of life, for /healthz; it also goes when the consumer starts.
        self.heartbeat = periodic(crontab(minute="*"), "heartbeat", _heartbeat_on(huey), HEARTBEAT)
        periodic(crontab(minute="43"), "apply_retention", _apply_retention, BULK)  # hourly
        self.build_campaign = task("build_campaign", _build_campaign, BULK)
        self.pump_campaign = task("pump_campaign", _pump_campaign, ROUTINE)
        self._dispatch_campaign = task("dispatch_campaign", _dispatch_campaign, BULK)
        self.pump_campaigns = periodic(crontab(minute="*"), "pump_campaigns", _pump_campaigns)
        self.reconcile_campaign = task("reconcile_campaign", _reconcile_campaign, BULK)
        self._sync_blacklist = task("sync_blacklist", _sync_blacklist, ROUTINE)
        self._run_contact_import = task("run_contact_import", _run_contact_import, ROUTINE)
        self._post_odoo_notes = task("post_odoo_notes", _post_odoo_notes, ROUTINE)
        self.sync_odoo = periodic(crontab(minute="*"), "sync_odoo", _sync_odoo_if_due)

    def run_contact_import(self, import_id: int, dry_run: bool) -> None:
        """The dry run or the import of a CSV file uploaded on the contacts page."""
        self._run_contact_import(import_id, dry_run)

    def post_odoo_notes(self, message_ids: list[int]) -> None:
        """Post these messages as notes in their contacts' Odoo partners' chatter."""
        self._post_odoo_notes(message_ids)

    def sync_blacklist(self, contact_ids: list[int]) -> None:
        """Push these contacts' SMS opt-outs (or their reversal) to every provider's blacklist."""
        self._sync_blacklist(contact_ids)

    def push_erased_to_blacklist(self, numbers: list[str]) -> None:
        """Add an erased contact's numbers to every provider's blacklist (contacts/blacklist.py)."""
        self._sync_blacklist([], None, 1, numbers)

    def sync_blacklist_later(self, contact_ids: list[int], channel_ids: list[int] | None, attempt: int,
                             delay_seconds: float, numbers: list[str] | None = None) -> None:
        """Try again later, on these channels only (None: all of them)."""
        self._sync_blacklist.schedule((contact_ids, channel_ids, attempt, *([numbers] if numbers else [])),
                                      delay=delay_seconds)

    def pump_campaign_later(self, campaign_id: int, delay_seconds: float) -> None:
        self.pump_campaign.schedule((campaign_id,), delay=delay_seconds)

    def fetch_media(self, message_ids: list[int]) -> None:
        """Fetch the files customers sent with these messages."""
        self._fetch_media(message_ids)

    def fetch_media_later(self, message_ids: list[int], delay_seconds: float) -> None:
        self._fetch_media.schedule((message_ids,), delay=delay_seconds)

    def dispatch(self, message_ids: Iterable[int]) -> None:
        ids = list(message_ids)
        for start in range(0, len(ids), DISPATCH_CHUNK):
            self._dispatch(ids[start:start + DISPATCH_CHUNK])

    def dispatch_later(self, message_ids: list[int], delay_seconds: float) -> None:
        for start in range(0, len(message_ids), DISPATCH_CHUNK):
            self._dispatch.schedule((message_ids[start:start + DISPATCH_CHUNK],), delay=delay_seconds)

    def check_unknown(self, message_ids: list[int]) -> None:
        """Ask the provider now about these messages whose send has an unknown outcome."""
        for start in range(0, len(message_ids), DISPATCH_CHUNK):
            self._check_unknown(message_ids[start:start + DISPATCH_CHUNK])

    def check_unknown_later(self, message_ids: list[int], delay_seconds: float) -> None:
        for start in range(0, len(message_ids), DISPATCH_CHUNK):
            self._check_unknown.schedule((message_ids[start:start + DISPATCH_CHUNK],), delay=delay_seconds)

    def sweep_now(self) -> None:
        """Run the sweeper, and the running campaigns' pumps, at once (a process starting up after a
        crash) instead of at the next minute."""
        self._sweep()
        self.pump_campaigns()

    @staticmethod
    def schedule(later: list[tuple[int, float]], enqueue: Callable[[list[int], float], None]) -> None:
        """Enqueue (message id, delay) pairs, one job per delay: a batch's messages share theirs."""
        by_delay: dict[float, list[int]] = defaultdict(list)
        for message_id, delay in later:
            by_delay[delay].append(message_id)
        for delay, ids in by_delay.items():
            enqueue(ids, delay)

    def consumer(self, workers: int = 2) -> Consumers:
        """The consumers to run inside this process (serve): threads, no signal handlers of their own;
        `workers` for the main queue, one more for the urgent one."""
        return Consumers([self._consumer(self.huey, workers, periodic=True, max_delay=0.5)] +
                         ([self._consumer(self.urgent, 1, periodic=False, max_delay=URGENT_POLL_SECONDS)]
                          if self.urgent is not self.huey else []),
                         on_start=self.heartbeat.call_local)

    @staticmethod
    def _consumer(huey: Huey, workers: int, periodic: bool, max_delay: float):
        consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=periodic,
                                        initial_delay=0.05, backoff=1.5, max_delay=max_delay, check_worker_health=False)
        consumer._set_signal_handlers = lambda: None  # the web server owns the process's signals
        return consumer


class Consumers:
    """A process's consumers, started and stopped together."""

    def __init__(self, consumers: list, on_start: Callable[[], None] | None = None):
        self.consumers = consumers
        self.on_start = on_start

    def start(self) -> None:
        for consumer in self.consumers:
            consumer.start()
        if self.on_start is not None:
            self.on_start()

    def stop(self, graceful: bool = True) -> None:
        for consumer in self.consumers:
            consumer.stop(graceful=graceful)
