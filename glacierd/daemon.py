"""``glacierd run``: the daemon. Wires the watcher, the scheduler and the
uploader to the store, and owns the process's lifecycle.

* one daemon per state directory (an flock'd pid file);
* the watcher records settled files as pending; the scheduler drains the queue
  one file at a time, retries failures when their time comes, polls Glacier
  jobs, requests inventories and does the housekeeping;
* SIGTERM/SIGINT: take no new work, let in-flight parts finish within
  ``shutdown_grace_seconds``, record everything, exit 0; SIGHUP: reload the
  config (a bad one is logged and the old one kept);
* with ``NOTIFY_SOCKET``: READY, STATUS, WATCHDOG and STOPPING for systemd.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import fcntl
import functools
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from glacierd import config as config_mod
from glacierd import faultpoints, humanize, inventory, wiring
from glacierd.bundleindex import BundleIndexer
from glacierd.errors import AlreadyRunningError, ConfigError, GlacierdError
from glacierd.fanout import FanOut
from glacierd.glacier import GlacierClient
from glacierd.hostname import this_host
from glacierd.packer import Packer, is_bundle_path
from glacierd.pathtext import shown
from glacierd.sdnotify import Notifier
from glacierd.signals import DaemonSignals
from glacierd.store.repository import FileRecord, Store
from glacierd.store.states import FileState, utcnow
from glacierd.uploader import Outcome, Uploader
from glacierd.watcher import Watcher, check_watch_paths

log = logging.getLogger("glacierd.daemon")

HEARTBEAT_SECONDS = 5.0
QUEUE_PAGE = 100
"""Files the drain takes from the store at a time: its memory, whatever the queue."""
HEARTBEAT_STALE = dt.timedelta(seconds=30)
"""A daemon whose heartbeat is older is gone (as `glacierd status` tells it)."""


class _NoSkipWarnings(logging.Filter):
    """A drain (or any job) that outlasts its interval is normal: APScheduler's
    "skipped: maximum number of running instances reached", every interval for
    the whole of a long upload, would flood the journal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in str(record.msg)


# APScheduler's own logger: its lifecycle chatter stays below WARNING (see
# _start_scheduler), and the skips never get through at all.
logging.getLogger("apscheduler.scheduler").addFilter(_NoSkipWarnings())


class InstanceLock:
    """An exclusive flock on ``STATE_DIR/glacierd.pid``, which holds our pid.

    The kernel drops the lock when the process dies, even by SIGKILL, so a
    stale pid file never blocks a restart.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "glacierd.pid"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunningError(
                f"another glacierd daemon (pid {holder}) is running on {self.path.parent}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def check_state_dir(state_dir: Path, where: str) -> None:
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{where}: [state] dir = {str(state_dir)!r}: cannot be created: "
                          f"{exc.strerror}") from None
    if not os.access(state_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"{where}: [state] dir = {str(state_dir)!r}: not writable")


class Daemon:
    """One run of the daemon. ``client`` may be injected (``--local``, tests)."""

    def __init__(self, config: config_mod.Config, *, client: GlacierClient | None = None,
                 notifier: Notifier | None = None,
                 reload: Callable[[], config_mod.Config] | None = None,
                 now: Callable[[], dt.datetime] = utcnow,
                 on_ready: Callable[[], None] | None = None,
                 signals: DaemonSignals | None = None) -> None:
        self.config = config
        self.now = now
        self.on_ready = on_ready
        self.where = str(config.source) if config.source else "glacierd"
        self._client = client
        self.notifier = notifier or Notifier()
        self._reload_config = reload or (lambda: config_mod.load(self.config.source or ""))
        # The CLI installs these first thing (a SIGTERM during start-up ends the run
        # cleanly); a daemon built elsewhere installs them when it runs.
        self.signals = signals or DaemonSignals()
        self.stop_requested = self.signals.stop
        self.reload_requested = self.signals.reload
        self._draining = threading.Lock()
        self.files: FanOut[Outcome] = FanOut()
        """The drain's uploads of one-part files, several at once."""
        self.started_at = utcnow()
        self.host = this_host()
        self.store: Store | None = None
        self.uploader: Uploader | None = None
        self.packer: Packer | None = None
        self.watcher: Watcher | None = None
        self.scheduler: Any = None
        self.mover: Any = None  # [migrate]'s, made at its first step
        self.web: Any = None  # [http]'s server
        self._migration_planned_from: str | None = None  # the inventory's job id

    # --- start and stop ---------------------------------------------------------

    def prepare(self) -> None:
        """Everything that can refuse to start, before anything runs."""
        check_state_dir(self.config.state.dir, self.where)
        check_watch_paths(self.config.watch, self.where)
        if not self.config.watch:
            log.warning("%s: no [[watch]] folders: only unfinished uploads will be done",
                        self.where)
        self.lock = InstanceLock(self.config.state.dir)
        self.lock.acquire()
        try:
            # a catalog on PostgreSQL may hold several hosts' files: this one's are its
            self.store = Store.open(self.config.database_url, host=self.host)
            if not self.store.claim_host():
                raise AlreadyRunningError(
                    f"{self.where}: a daemon of host {self.host!r} is already running on this "
                    "catalog (on another machine?): give each machine its own name "
                    "($GLACIERD_HOST)")
            self.target = wiring.connect(self.config, glacier=self._client)
            self.backend = self.target.backend
        except BaseException:
            if self.store is not None:
                self.store.release_host()
            self.lock.release()
            raise
        self.uploader = wiring.make_uploader(self.config, self.store, self.backend)
        self.watcher = self._make_watcher(self.config)
        self.packer = self._make_packer(self.config)
        self.packer.recover()

    @property
    def bundles_dir(self) -> Path:
        return wiring.bundles_dir(self.config)

    def _make_packer(self, config: config_mod.Config) -> Packer:
        assert self.store is not None
        if config.encryption is not None and config.pack.threshold:
            log.warning("%s: [pack] is not used with [encryption] yet: small files are "
                        "uploaded one by one, encrypted", self.where)

        def root_of(path: str) -> str | None:
            watch = self.watcher.watch_for(path) if self.watcher is not None else None
            return str(watch.path) if watch is not None else None

        def failed(record: FileRecord, error: str) -> None:
            assert self.uploader is not None  # the one back-off for files that fail
            self.uploader.failed(record, error)

        return wiring.make_packer(config, self.store, host=self.host, root_of=root_of,
                                  now=self.now, on_failure=failed)

    def _make_watcher(self, config: config_mod.Config) -> Watcher:
        return Watcher(config.watch, self._record, skip=[config.state.dir],
                       follow_symlinks=config.upload.follow_symlinks,
                       on_unreadable=self._unreadable_folders,
                       record_many=self._record_many)

    def run(self) -> int:
        self.signals.install()
        faultpoints.hit("daemon-starting")
        self.prepare()
        try:
            if not self.stop_requested.is_set():  # a SIGTERM while starting: stop at once
                self._start()
            while not self.stop_requested.wait(0.5):
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    self.reload()
        finally:
            self.shutdown()
        return 0

    def _start(self) -> None:
        assert self.store is not None and self.watcher is not None
        store = self.store
        store.event("info", "daemon-started", f"glacierd started (pid {os.getpid()}) for "
                                              f"{self.config.target}")
        self._heartbeat()
        # Events first, then the scan: a file landing in between is seen twice (harmless),
        # never by neither.
        self.watcher.start()
        found = self.watcher.scan()
        log.info("start-up scan: %d files in %d watched folders", found, len(self.config.watch))
        self._start_scheduler()
        self._start_web()
        self.notifier.ready(self._status_text())
        if self.on_ready is not None:
            self.on_ready()
        log.info("glacierd is running (pid %d)", os.getpid())

    def request_stop(self) -> None:
        self.stop_requested.set()

    def shutdown(self) -> None:
        """Stop taking work, let in-flight parts finish within the grace period."""
        self.notifier.stopping()
        grace = self.config.daemon.shutdown_grace_seconds
        if self.watcher is not None:
            self.watcher.stop()
        if self.uploader is not None:
            self.uploader.stopping.set()
        if self.mover is not None:
            self.mover.stopping.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if self.web is not None:
            self.web.stop()
        if self._draining.acquire(timeout=grace):
            self._draining.release()
            self.files.close()
            if self.uploader is not None:
                self.uploader.close()
        else:
            log.warning("in-flight parts did not finish within %.0fs; they resume at the next "
                        "start", grace)
        if self.store is not None:
            self.store.daemon_stopped(os.getpid())
            self.store.event("info", "daemon-stopped", f"glacierd stopped (pid {os.getpid()})")
            self.store.release_host()
        self.lock.release()
        log.info("glacierd stopped")

    def _start_web(self) -> None:
        """``[http]``: /metrics, /healthz and the status page, on their own threads.
        The address it bound (a port of 0 picks one) is written to
        ``http-endpoint.json`` in the state folder."""
        section = self.config.http
        if section is None:
            return
        import json

        from glacierd import metrics
        from glacierd.glacier.transport import ERROR_OBSERVERS
        from glacierd.store.reader import open_reader
        from glacierd.web import StatusServer

        if metrics.count_request_error not in ERROR_OBSERVERS:
            ERROR_OBSERVERS.append(metrics.count_request_error)
        url = self.config.database_url
        host, port = section.address
        try:
            priced = (self.config.target, self.config.storage_class,
                      self.config.price_table())
            self.web = StatusServer(host, port, lambda: open_reader(url), token=section.token,
                                    priced=priced)
        except OSError as exc:
            raise ConfigError(f"{self.where}: [http] listen = {section.listen!r}: "
                              f"{exc.strerror or exc}") from None
        bound = self.web.start()
        published = self.config.state.dir / "http-endpoint.json"
        fd = os.open(published, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"host": bound[0], "port": bound[1]}, fh)
        log.info("serving /metrics, /healthz and the status page on http://%s:%d/", *bound)

    # --- scheduled work -----------------------------------------------------------

    def _start_scheduler(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        # APScheduler logs every run of every job at INFO: a line a second in the journal.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)

        scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        )
        self.scheduler = scheduler
        self._schedule_jobs(self.config)
        scheduler.start()

    def _schedule_jobs(self, config: config_mod.Config) -> None:
        sched = config.schedule
        now = utcnow()
        jobs: list[tuple[str, Callable[[], None], float | None, dt.datetime]] = [
            ("settle", self._settle, sched.settle_check_seconds, now),
            ("drain", self.drain, sched.drain_seconds, now),
            ("heartbeat", self._heartbeat, HEARTBEAT_SECONDS, now),
            ("rescan", self._rescan, sched.rescan_seconds, now + dt.timedelta(
                seconds=sched.rescan_seconds)),
            ("poll-jobs", self.poll_jobs, sched.job_poll_seconds, now),
            ("inventory", self.maybe_request_inventory, min(sched.inventory_every or 3600, 3600),
             now + dt.timedelta(seconds=5)),
            ("housekeeping", self.housekeeping, sched.housekeeping_seconds,
             now + dt.timedelta(seconds=30)),
            ("migrate", self.migrate_step, sched.job_poll_seconds if config.migrate else None,
             now + dt.timedelta(seconds=1)),
        ]
        if self.notifier.watchdog_interval:
            jobs.append(("watchdog", self._watchdog_ping, self.notifier.watchdog_interval, now))
        for name, func, seconds, first in jobs:
            if seconds is None:
                continue
            self.scheduler.add_job(self._guarded(name, func), "interval", seconds=seconds,
                                   id=name, name=name, replace_existing=True,
                                   next_run_time=first)

    def _guarded(self, name: str, func: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                func()
            except Exception as exc:  # a scheduled job must never take the daemon down
                log.error("%s: %s: %s", name, type(exc).__name__, exc)
                if self.store is not None:
                    with contextlib.suppress(GlacierdError):
                        self.store.event("error", f"{name}-failed",
                                         f"{type(exc).__name__}: {exc}")
        return run

    def _record(self, path: str, size: int, mtime_ns: int) -> None:
        """A settled file: into the queue (the store), nothing more."""
        assert self.store is not None
        try:
            inode = os.lstat(path).st_ino
        except OSError:
            return
        record = self.store.file_seen(path, size, mtime_ns, inode)
        if record.state == FileState.PENDING:
            log.info("queued %s (%s)", shown(path), humanize.size(size))

    def _record_many(self, ready: list[tuple[str, int, int]]) -> None:
        """A settle pass: into the queue (the store), in one transaction."""
        assert self.store is not None
        seen = []
        for path, size, mtime_ns in ready:
            try:
                seen.append((path, size, mtime_ns, os.lstat(path).st_ino))
            except OSError:
                continue  # gone since it settled
        for record in self.store.files_seen(seen):
            if record.state == FileState.PENDING:
                log.info("queued %s (%s)", shown(record.path), humanize.size(record.size))

    def _unreadable_folders(self, folders: dict[str, str]) -> None:
        assert self.store is not None
        self.store.set_folder_problems(folders)

    def _settle(self) -> None:
        assert self.watcher is not None
        self.watcher.settle()

    def _rescan(self) -> None:
        assert self.watcher is not None
        self.watcher.scan()

    def drain(self) -> None:
        """Upload what the queue holds, one file at a time, until it is empty."""
        if not self._draining.acquire(blocking=False):
            return
        try:
            assert self.store is not None
            # One try per file a pass (a busy file waits for the next), a page of the
            # queue at a time: the page goes on from the last file of the one before.
            last: FileRecord | None = None
            packer = self.packer
            bundles = self.bundles_dir
            if packer is not None:  # small files into bundles first: they go up below
                packer.pack(stop=self.stop_requested.is_set)
            while not self.stop_requested.is_set():
                batch = self.store.pending_files(self.now(), limit=QUEUE_PAGE, after=last)
                if not batch:
                    return
                for record in batch:
                    last = record
                    if self.stop_requested.is_set():
                        return
                    uploader = self.uploader
                    assert uploader is not None and self.watcher is not None
                    if is_bundle_path(record.path, bundles):
                        root: Path | None = bundles
                    elif packer is not None and packer.wants(record):
                        continue  # waits for its bundle
                    else:
                        watch = self.watcher.watch_for(record.path)
                        root = watch.path if watch is not None else None
                    if root is None:  # not (or no longer) in a watched folder: the daemon
                        continue  # reads nothing else; `glacierd upload`/`retry` take it
                    upload = functools.partial(uploader.upload_path, record.path, root=root)
                    if 0 < record.size <= uploader.settings.part_size:
                        # one part: several at once (their round trips overlap), as many
                        # as the parts of one file may be (the same memory bound)
                        ended = self.files.submit(upload, uploader.settings.concurrency)
                    else:  # a file of many parts alone: its parts are the concurrency
                        ended = self.files.finish()
                        ended.append(self.files.now(upload))
                    if not self._after_uploads(ended):
                        return  # stopping: an upload resumes at the next start
        finally:
            try:
                self._after_uploads(self.files.finish())
            finally:
                self._draining.release()

    def _after_uploads(self, ended: list[concurrent.futures.Future[Outcome]]) -> bool:
        """``_after_upload`` for each upload that ended; False if one was stopped
        (the daemon is stopping). An upload's error is raised after the others'
        files have been seen to."""
        going, failure = True, None
        for future in ended:
            try:
                outcome = future.result()
            except InterruptedError:
                going = False
                continue
            except Exception as exc:
                failure = failure or exc
                continue
            self._after_upload(outcome)
        if failure is not None:
            raise failure
        return going

    def _after_upload(self, outcome: Outcome) -> None:
        """keep, delete or move a file — only once its archive is committed."""
        if self.packer is not None and is_bundle_path(outcome.path, self.bundles_dir):
            if outcome.status == "archived":
                self.packer.uploaded(outcome.path)
                for member in self.packer.archived_members(outcome.path):
                    self._after_upload(Outcome(member, "archived"))
            elif outcome.status == "gone" and self.store is not None:
                record = self.store.file(outcome.path)
                if record is not None:
                    self.store.unpack(record.id, "its bundle file was lost before upload")
            return
        if outcome.status != "archived" or self.watcher is None or self.store is None:
            return
        watch = self.watcher.watch_for(outcome.path)
        if watch is None or watch.after_upload == "keep":
            return
        path = Path(outcome.path)
        try:
            if watch.after_upload == "delete":
                path.unlink()
                self.store.event("info", "deleted", f"{shown(path)}: deleted after upload")
            elif watch.move_to is not None:
                target = watch.move_to / path.relative_to(watch.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), str(target))
                self.store.event("info", "moved",
                                 f"{shown(path)}: moved to {shown(target)} after upload")
        except OSError as exc:
            self.store.event("error", "after-upload-failed", f"{shown(path)}: {exc}")

    def poll_jobs(self) -> None:
        """Follow Glacier jobs: apply finished inventories, download restores."""
        assert self.store is not None
        if self.target.glacier is not None:
            poll_inventories(self.target.glacier, self.store, self.config.state.dir, self.now(),
                             wiring.unsealer(self.config))
        wiring.make_restorer(self.config, self.store, self.backend, now=self.now).poll()
        # a rebuilt catalog: the files packed in bundles, from the bundles' indexes
        BundleIndexer(self.store, self.backend, tier=self.config.restore.tier,
                      host=self.host, now=self.now).step()

    def maybe_request_inventory(self) -> None:
        every = self.config.schedule.inventory_every
        client = self.target.glacier
        if every is None or client is None:  # a bucket lists at once: no inventories
            return
        assert self.store is not None
        last = self.store.jobs(kind="inventory", limit=1)
        if last and (self.now() - last[0].created_at).total_seconds() < every:
            return
        job_id = client.initiate_inventory_job(self.config.vault.name)
        self.store.add_job(job_id, self.config.vault.name, "inventory", created_at=self.now())
        log.info("requested an inventory of %s (job %s)", self.config.vault.name, job_id)

    def migrate_step(self) -> None:
        """``[migrate]``: plan the vault's archives from its newest inventory (asked
        for when there is none), then move what is ready (``migration.mover``)."""
        from glacierd import inventory
        from glacierd.migration.mover import Mover, MoveSettings, plan_inventory
        from glacierd.store.migrations import MigrationLedger

        section, glacier = self.config.migrate, self.target.glacier
        if section is None or glacier is None or self.store is None:
            return
        vault = self.config.vault.name
        last = self.store.last_inventory(vault)
        if last is None:
            if not self.store.jobs(statuses=["InProgress"], kind="inventory"):
                job_id = glacier.initiate_inventory_job(vault)
                self.store.add_job(job_id, vault, "inventory", created_at=self.now())
                log.info("migration: requested an inventory of %s (job %s)", vault, job_id)
            return
        ledger = MigrationLedger(self.store)
        if self.mover is None:
            s3 = wiring.make_s3_client(self.config)
            if not s3.bucket_exists(section.to_bucket):
                log.error("[migrate] to_bucket = %s: no such bucket (or not yours): nothing "
                          "is moved until it exists", section.to_bucket)
                return
            self.mover = Mover(ledger, glacier, vault, s3, MoveSettings(
                tier=section.tier, max_jobs=section.max_jobs, concurrency=section.concurrency,
                part_size=self.config.upload.part_size, delete_source=section.delete_source,
                lock_dir=self.config.state.dir / "locks"), now=self.now)
        if self._migration_planned_from != last.job_id:
            try:
                inv = inventory.parse(Path(last.output_path).read_bytes())
            except (OSError, inventory.UnreadableInventory) as exc:
                log.error("migration: the inventory %s cannot be read: %s", last.output_path, exc)
                return
            plan_inventory(ledger, inv, vault=vault, bucket=section.to_bucket,
                           prefix=section.prefix, storage_class=section.storage_class,
                           tier=section.tier, part_size=self.config.upload.part_size)
            self._migration_planned_from = last.job_id
        self.mover.step()

    def housekeeping(self) -> None:
        """Abort this host's glacierd uploads the store no longer tracks (and the
        empty twin a retried Initiate leaves beside a tracked one); delete bundles
        that hold no live file; prune events."""
        assert self.store is not None
        tracked = self.store.tracked_uploads()
        for pending in self.backend.pending_uploads():
            if pending.host != self.host or pending.token is None:
                continue  # not glacierd's, or another host's
            if pending.token in tracked and tracked[pending.token] in (None, pending.upload_id):
                continue  # ours to finish (None: its id is not recorded yet: wait)
            self.backend.abort(pending)
            self.store.event("info", "housekeeping",
                             f"aborted untracked upload {pending.upload_id} ({pending.token})")
        for bundle in self.store.emptied_bundles(self.config.target):
            # every file of it deleted, or repacked into a newer bundle: it holds nothing
            self.backend.delete(bundle)
            self.store.mark_archive_deleted(bundle)
            self.store.event("info", "housekeeping", f"deleted bundle {bundle}: none of its "
                                                     "files is left in it")
        keep = dt.timedelta(days=self.config.schedule.keep_events_days)
        self.store.prune_events(self.now() - keep)

    def _status_text(self) -> str:
        assert self.store is not None
        counts = self.store.count_files()
        queued = counts.get("pending", 0) + counts.get("uploading", 0)
        failed = counts.get("failed", 0)
        text = f"{counts.get('archived', 0)} archived, {queued} queued"
        return text + (f", {failed} failed" if failed else "")

    def _heartbeat(self) -> None:
        assert self.store is not None
        status = self._status_text()
        self.store.heartbeat(os.getpid(), self.config.target, self.started_at,
                             status)
        self.notifier.status(status)

    def _watchdog_ping(self) -> None:
        self.notifier.watchdog()

    # --- reload ---------------------------------------------------------------------

    def reload(self) -> None:
        """SIGHUP: apply a new config; keep the old one if the new one is bad."""
        try:
            new = self._reload_config()
            check_watch_paths(new.watch, str(new.source))
        except GlacierdError as exc:
            log.error("config not reloaded, keeping the running one: %s", exc)
            if self.store is not None:
                self.store.event("error", "reload-failed", str(exc))
            return
        if (new.vault, new.s3, new.state, new.aws) != (self.config.vault, self.config.s3,
                                                       self.config.state, self.config.aws):
            log.warning("[vault], [s3], [state] and [aws] changes need a restart; applying "
                        "the rest")
            new = replace(new, vault=self.config.vault, s3=self.config.s3,
                          state=self.config.state, aws=self.config.aws)
        if new.watch != self.config.watch:
            assert self.watcher is not None
            self.watcher.stop()
            self.watcher = self._make_watcher(new)
            self.watcher.start()
            self.watcher.scan()
        if new.upload != self.config.upload and self.uploader is not None:
            # One uploader for the daemon's life: a drain under way keeps it, and
            # shutdown stops it; a second one would upload on, unstopped.
            self.uploader.reconfigure(wiring.upload_settings(new), wiring.make_limiter(new))
        if new.pack != self.config.pack:  # the next drain packs with the new settings
            self.config = replace(self.config, pack=new.pack)
            self.packer = self._make_packer(self.config)
        if new.migrate != self.config.migrate:  # the next step starts with the new section
            if self.mover is not None:
                self.mover.stopping.set()
            self.mover, self._migration_planned_from = None, None
        self.config = new
        if self.scheduler is not None:
            self._schedule_jobs(new)
        log.info("config reloaded from %s", new.source)
        if self.store is not None:
            self.store.event("info", "reloaded", f"config reloaded from {new.source}")


def poll_inventories(client: GlacierClient, store: Store, state_dir: Path,
                     now: dt.datetime,
                     unseal: inventory.Unseal | None = None) -> list[inventory.Reconciliation]:
    """Fetch and apply every finished inventory job; what each found."""
    from glacierd import catalog

    fetched = []
    for job in store.jobs(statuses=["InProgress"], kind="inventory"):
        answer = client.describe_job(job.vault, job.job_id)
        status = answer.get("StatusCode", "InProgress")
        if status == "Failed":
            store.update_job(job.job_id, "Failed",
                             error=str(answer.get("StatusMessage") or "failed"))
        elif status == "Succeeded":
            fetched.append(catalog.fetch_inventory(client, store, job, state_dir, now, unseal))
    return fetched


def local_config(state_dir: Path, watch_dirs: list[Path], endpoint_url: str,
                 access_key: str, secret_key: str, *, s3: bool = False) -> config_mod.Config:
    """The embedded default: an emulator vault (with ``s3``: a bucket in the
    emulator, Deep Archive), watched inbox, no AWS account."""
    return config_mod.Config(
        s3=config_mod.S3Section(bucket="local", create=True) if s3 else None,
        aws=config_mod.AwsSection(region="us-east-1", endpoint_url=endpoint_url,
                                  access_key_id=access_key, secret_access_key=secret_key),
        vault=config_mod.NO_VAULT if s3 else config_mod.VaultSection(name="local", create=True),
        state=config_mod.StateSection(dir=state_dir),
        restore=config_mod.RestoreSection(dir=state_dir.parent / "restored"),
        upload=config_mod.UploadSection(),
        schedule=config_mod.ScheduleSection(job_poll_seconds=10.0),
        watch=tuple(config_mod.WatchSection(path=d, settle_seconds=3.0) for d in watch_dirs),
        source=None,
        # a demonstration: small files are packed, and a bundle does not wait long
        pack=config_mod.PackSection(max_wait=10.0),
    )


__all__ = ["ConfigError", "Daemon", "InstanceLock", "local_config"]
