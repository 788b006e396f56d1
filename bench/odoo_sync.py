"""Odoo partner sync at scale: the sandbox Odoo with N partners, synced into a fresh database.

    uv run python bench/odoo_sync.py [--partners 100000] [--page-size 2000] [--database-url URL]

1. starts the sandbox XML-RPC server (contact_center.odoo.sandbox) in a child process with N
   fictitious partners whose phones are written the ways Odoo users write them (so its memory is
   not counted as ours);
2. times reading every page over XML-RPC without writing anything (what the wire and parsing cost;
   this first pass also has the sandbox marshal each partner once, which it keeps for the passes
   after it: the sandbox's own speed is not what is measured);
3. times a full sync into an empty database (every partner created), then a --full sync of the same
   partners into the filled table (every partner matched by its partner id, nothing changed), and an
   incremental one (nothing to read);
4. prints partners/s and this process's peak RSS beside the goals, and the CPU time this process
   spent a partner (on a shared machine the wall-clock rate moves with the load; that does not).

Default database: SQLite in a temporary directory. --database-url takes a PostgreSQL URL (its tables
are created by the migrations; use an empty database).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

GOAL_RATE = 2000  # partners/s
GOAL_PEAK_MB = 300


def serve_sandbox(count: int, pipe) -> None:
    from contact_center.odoo.sandbox import OdooSandbox, sample_partners

    sandbox = OdooSandbox(sample_partners(count))
    pipe.send((sandbox.url, sandbox.database, sandbox.login, sandbox.api_key))
    sandbox.serve_forever()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=2000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    import contact_center.models  # noqa: F401
    from contact_center.db import make_engine, make_session_factory
    from contact_center.migrations import upgrade
    from contact_center.odoo.config import OdooConfig, parse_field_map
    from contact_center.odoo.sync import ORDER, _after, _PartnerReader, sync_partners

    print(f"starting the sandbox Odoo with {args.partners:,} partners…", flush=True)
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(target=serve_sandbox, args=(args.partners, theirs), daemon=True)
    child.start()
    url, database, login, api_key = ours.recv()
    config = OdooConfig(url, database, login, api_key, parse_field_map(""), timeout=120)
    try:
        workdir = Path(tempfile.mkdtemp(prefix="odoo-bench-"))
        engine = make_engine(args.database_url or f"sqlite:///{workdir / 'bench.db'}")
        upgrade(engine)
        factory = make_session_factory(engine)
        print(f"database: {engine.dialect.name}; page size {args.page_size:,}; "
              f"peak RSS before the sync {peak_mb():.0f} MB", flush=True)

        client = config.client()
        client.login()
        fields = _PartnerReader(config, client.fields_get()).fields
        started, mark, fetched, cpu = time.perf_counter(), None, 0, cpu_seconds()
        while page := client.search_read(_after(mark), fields, order=ORDER, limit=args.page_size):
            fetched += len(page)
            mark = (page[-1]["write_date"], page[-1]["id"])
        fetch_seconds = time.perf_counter() - started
        print(f"XML-RPC only (no writes): {fetched:,} partners in {fetch_seconds:.1f} s, "
              f"{fetched / fetch_seconds:,.0f} partners/s; {(cpu_seconds() - cpu) / fetched * 1e6:,.0f} µs of this "
              "process's CPU a partner", flush=True)

        cpu = cpu_seconds()
        first = sync_partners(factory, config, page_size=args.page_size)
        first_cpu, cpu = cpu_seconds() - cpu, cpu_seconds()
        print(f"full sync, empty database: {first.read:,} read, {first.created:,} created, "
              f"{first.rejected_count:,} rejected in {first.elapsed:.1f} s: {first.partners_per_second:,.0f} partners/s; "
              f"{first_cpu / first.read * 1e6:,.0f} µs of this process's CPU a partner", flush=True)
        again = sync_partners(factory, config, full=True, page_size=args.page_size)
        again_cpu = cpu_seconds() - cpu
        print(f"--full again, filled table: {again.read:,} read, {again.unchanged:,} unchanged, {again.created:,} "
              f"created in {again.elapsed:.1f} s: {again.partners_per_second:,.0f} partners/s; "
              f"{again_cpu / again.read * 1e6:,.0f} µs of this process's CPU a partner", flush=True)
        incremental = sync_partners(factory, config, page_size=args.page_size)
        print(f"incremental, nothing changed: {incremental.read:,} read in {incremental.elapsed:.2f} s", flush=True)
    finally:
        child.terminate()
        child.join(5)

    peak = peak_mb()
    rate = min(first.partners_per_second, again.partners_per_second)
    print()
    print(f"partners/s (the slower of the two full syncs): {rate:,.0f}  goal ≥ {GOAL_RATE:,}  "
          f"{'met' if rate >= GOAL_RATE else 'NOT MET'}")
    print(f"peak RSS of the syncing process: {peak:.0f} MB  goal ≤ {GOAL_PEAK_MB} MB  "
          f"{'met' if peak <= GOAL_PEAK_MB else 'NOT MET'}")
    sys.exit(0 if rate >= GOAL_RATE and peak <= GOAL_PEAK_MB else 1)


if __name__ == "__main__":
    main()
