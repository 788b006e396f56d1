"""Contact import and phone lookup at scale, on a fresh SQLite database.

    uv run python bench/contact_lookup.py [--contacts 1000000] [--lookups 20000] [--seed-lookups 50]

1. generates a CSV of fictitious contacts (Brazilian Excel style: ';', UTF-8 with BOM, Portuguese
   headers; numbers written many ways, some landlines, some 12-digit old-mobile forms);
2. imports it with csv_io.import_contacts in a child process, sampling its memory with psutil
   (so the peak is the import's own, not the CSV generation's), then re-imports a slice with
   changes to measure the rate into a filled table;
3. times contacts.service.find_by_phone for random written forms of numbers in the database (and
   some misses), and the seed's `ILIKE '%digits%'` scan for a smaller sample, as the seed's
   webhook did it;
4. prints the figures beside the goals, and a summary block to paste.

All data is made up: names "Cliente N", CPFs with valid check digits built from N, numbers from
a formula (unique per N).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_P99_MS = 1.0
GOAL_SPEEDUP = 1000
GOAL_IMPORT_RATE = 20_000
GOAL_IMPORT_PEAK_MB = 300

HEADER = ["Nome", "Telefone", "Celular", "CPF", "E-mail", "Observações", "Não enviar SMS", "opt_out_whatsapp"]
UNIQUE_UP_TO = 10_000_000  # numbers and CPFs are distinct for every i below this
MISS_FROM = 9_000_000
DDDS = ["11", "21", "31", "41", "48", "51", "61", "71", "81", "85", "91", "92", "19", "27", "62"]


# --- fictitious data -------------------------------------------------------------------------


def cpf(i: int) -> str:
    base = f"{(i * 7907 + 100_000_001) % 1_000_000_000:09d}"
    digits = [int(d) for d in base]
    for position in (9, 10):
        total = sum(d * w for d, w in zip(digits, range(position + 1, 1, -1)))
        digits.append(total * 10 % 11 % 10)
    return "".join(map(str, digits))


def kind(i: int) -> str:
    """'landline' (phone only), 'old' (mobile stored in the 12-digit form) or 'mobile'."""
    return {0: "landline", 1: "old"}.get(i % 10, "mobile")


def ddd(i: int) -> str:
    return DDDS[i % len(DDDS)]


def mobile8(i: int) -> str:
    """8 digits after the ninth digit, starting 6-9 so the 12-digit old form is valid too."""
    return f"{6 + i % 4}{(i * 7919 + 12_345) % 10_000_000:07d}"


def landline8(i: int) -> str:
    return f"3{(i * 104_729 + 777) % 10_000_000:07d}"


def write_mobile(i: int, form: int) -> str:
    d, s = ddd(i), mobile8(i)
    return [
        f"({d}) 9{s[:4]}-{s[4:]}",
        f"{d}9{s}",
        f"+55 {d} 9{s[:4]}-{s[4:]}",
        f"55{d}9{s}",
        f"0{d} 9{s[:4]}-{s[4:]}",
        f"{d} 9{s[:4]} {s[4:]}",
        f"55{d}{s}",  # WhatsApp's 12-digit form
        f"+55 ({d}) {s[:4]}-{s[4:]}",  # an old 8-digit mobile
    ][form % 8]


def write_landline(i: int, form: int) -> str:
    d, s = ddd(i), landline8(i)
    return [f"({d}) {s[:4]}-{s[4:]}", f"{d}{s}", f"+55 {d} {s[:4]}-{s[4:]}", f"0{d} {s}"][form % 4]


def generate_csv(path: Path, count: int) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(HEADER)
        for i in range(count):
            k = kind(i)
            phone = write_landline(i, i // 10) if k == "landline" or i % 3 == 0 else ""
            if k == "landline":
                mobile = ""
            elif k == "old":
                mobile = write_mobile(i, 6 + (i // 10) % 2)
            else:
                mobile = write_mobile(i, i // 10 % 6)
            writer.writerow((
                f"Cliente {i}",
                phone,
                mobile,
                cpf(i) if i % 10 < 7 else "",
                f"cliente{i}@exemplo.com.br" if i % 2 == 0 else "",
                "cliente desde 2019; prefere WhatsApp" if i % 50 == 0 else "",
                ("sim", "não", "")[i % 3],
                "x" if i % 97 == 0 else "",
            ))


def generate_update_csv(path: Path, count: int, total: int) -> None:
    """A second file: rows of existing contacts with new notes (by CPF or by phone) and some new ones."""
    rng = random.Random(7)
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["nome", "celular", "telefone", "cpf", "obs"])
        for n in range(count):
            i = rng.randrange(total) if n % 10 else total + n  # 10% new contacts
            k = kind(i)
            mobile = "" if k == "landline" else write_mobile(i, n)
            phone = write_landline(i, n) if k == "landline" else ""
            writer.writerow((f"Cliente {i}", mobile, phone, cpf(i) if i % 10 < 7 else "", f"atualizado na carga {n}"))


def lookup_forms(count: int, total: int, seed: int = 42) -> list[tuple[str, bool]]:
    """(written number, expected to be found): 90% numbers in the database, 10% misses."""
    rng = random.Random(seed)
    forms = []
    for _ in range(count):
        hit = rng.random() < 0.9
        # misses: numbers of contacts never generated (the re-import adds some right after `total`)
        i = rng.randrange(total) if hit else MISS_FROM + rng.randrange(UNIQUE_UP_TO - MISS_FROM)
        form = rng.randrange(8)
        number = write_landline(i, form) if kind(i) == "landline" else write_mobile(i, form)
        forms.append((number, hit))
    return forms


# --- import in a child process ----------------------------------------------------------------


def child_import(database_url: str, csv_path: str, batch_size: str) -> None:
    from contact_center.contacts.csv_io import import_contacts
    from contact_center.db import background_checkpoints, make_engine, make_session_factory

    engine = make_engine(database_url)
    with background_checkpoints(engine):  # as `contacts import` does
        report = import_contacts(make_session_factory(engine), csv_path, batch_size=int(batch_size))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    print(json.dumps({
        "rows_read": report.rows_read, "created": report.created, "updated": report.updated,
        "merged": len(report.merged_duplicates), "rejected": report.rejected_count,
        "first_rejections": [f"line {r.line} {r.field}: {r.reason}" for r in report.rejected[:5]],
        "encoding": report.encoding, "delimiter": report.delimiter, "elapsed": report.elapsed,
        "ru_maxrss_mb": peak_kb / 1024,
    }))


def run_import(database_url: str, csv_path: Path, batch_size: int) -> dict:
    import psutil

    command = [sys.executable, __file__, "--child-import", database_url, str(csv_path), str(batch_size)]
    child = psutil.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampled = 0
    while child.poll() is None:
        try:
            sampled = max(sampled, child.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    out, err = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"the import failed:\n{err}")
    result = json.loads(out.strip().splitlines()[-1])
    result["sampled_rss_mb"] = sampled / 2**20
    result["peak_mb"] = max(result["ru_maxrss_mb"], result["sampled_rss_mb"])
    return result


# --- lookups ----------------------------------------------------------------------------------


def seed_lookup(session, raw: str):
    """The seed's webhook: digits with + - ( ) and spaces stripped, then a LIKE scan."""
    from sqlalchemy import or_, select

    from contact_center.contacts.models import Contact

    x = raw
    for ch in "+ -()":
        x = x.replace(ch, "")
    return session.scalars(
        select(Contact).where(or_(
            Contact.phone.ilike(f"%{x}%"), Contact.mobile.ilike(f"%{x}%"),
            Contact.phone.ilike(f"%+{x}%"), Contact.mobile.ilike(f"%+{x}%"),
        )).limit(1)
    ).first()


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def time_lookups(factory, forms, method) -> tuple[list[float], int]:
    timings, found = [], 0
    with factory() as session:
        for raw, _ in forms:
            session.expunge_all()  # every lookup loads its contact, as a fresh request would
            start = time.perf_counter()
            contact = method(session, raw)
            timings.append((time.perf_counter() - start) * 1000)
            found += contact is not None
    return timings, found


def mark(ok: bool) -> str:
    return "ok  " if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--seed-lookups", type=int, default=50, help="the seed's method is a full scan each")
    parser.add_argument("--reimport", type=int, default=100_000, help="rows re-imported into the filled table")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temp dir)")
    parser.add_argument("--batch-size", type=int, default=2000, help="import_contacts' batch_size (its default: 2000)")
    parser.add_argument("--child-import", nargs=3, metavar=("URL", "CSV", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        child_import(*args.child_import)
        return
    if args.contacts + args.reimport > MISS_FROM:
        parser.error(f"--contacts plus --reimport must stay below {MISS_FROM:,}")

    from contact_center.contacts.service import find_by_phone
    from contact_center.db import make_engine, make_session_factory
    from contact_center.migrations import upgrade

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="cc-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "bench.db"
    for leftover in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        leftover.unlink(missing_ok=True)
    url = f"sqlite:///{db_path}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    print(f"work dir {workdir}  python {sys.version.split()[0]}  cpus {os.cpu_count()}")

    csv_path = workdir / "contacts.csv"
    start = time.perf_counter()
    generate_csv(csv_path, args.contacts)
    size_mb = csv_path.stat().st_size / 2**20
    print(f"generated {args.contacts:,} rows ({size_mb:.0f} MB) in {time.perf_counter() - start:.1f} s")

    first = run_import(url, csv_path, args.batch_size)
    rate = first["rows_read"] / first["elapsed"]
    print(f"import: {json.dumps(first)}")

    second = None
    if args.reimport:
        update_path = workdir / "updates.csv"
        generate_update_csv(update_path, min(args.reimport, args.contacts), args.contacts)
        second = run_import(url, update_path, args.batch_size)
        print(f"re-import into the filled table: {json.dumps(second)}")

    forms = lookup_forms(args.lookups, args.contacts)
    with factory() as session:  # warm the page cache and the statement cache, untimed
        for raw, _ in forms[:200]:
            find_by_phone(session, raw)
    ours, ours_found = time_lookups(factory, forms, find_by_phone)
    expected_hits = sum(hit for _, hit in forms)
    seed_forms = forms[: args.seed_lookups]
    seed, seed_found = time_lookups(factory, seed_forms, seed_lookup)
    seed_expected = sum(hit for _, hit in seed_forms)
    ours.sort()
    seed.sort()
    p50, p95, p99, worst = (percentile(ours, p) for p in (50, 95, 99, 100))
    ours_mean = statistics.fmean(ours)
    seed_mean = statistics.fmean(seed) if seed else float("nan")
    speedup = seed_mean / ours_mean

    lines = [
        f"== contact_lookup bench (SQLite, batch_size {args.batch_size}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end) ==",
        f"contacts              {args.contacts:,} ({size_mb:.0f} MB CSV; ';', UTF-8 BOM, mixed written forms)",
        f"import rate           {rate:,.0f} rows/s ({first['elapsed']:.1f} s; created {first['created']:,}, "
        f"updated {first['updated']:,}, merged {first['merged']:,}, rejected {first['rejected']:,})"
        f"   goal >= {GOAL_IMPORT_RATE:,}  {mark(rate >= GOAL_IMPORT_RATE)}",
        f"import peak RSS       {first['peak_mb']:.0f} MB   goal <= {GOAL_IMPORT_PEAK_MB}  "
        f"{mark(first['peak_mb'] <= GOAL_IMPORT_PEAK_MB)}",
    ]
    if second:
        lines.append(
            f"re-import (filled)    {second['rows_read'] / second['elapsed']:,.0f} rows/s ({second['rows_read']:,} rows;"
            f" created {second['created']:,}, updated {second['updated']:,}, merged {second['merged']:,}); "
            f"peak {second['peak_mb']:.0f} MB"
        )
    lines += [
        f"find_by_phone         {len(ours):,} lookups, found {ours_found:,} of {expected_hits:,} expected",
        f"  p50/p95/p99/max     {p50:.3f} / {p95:.3f} / {p99:.3f} / {worst:.3f} ms   mean {ours_mean:.3f} ms"
        f"   goal p99 <= {GOAL_P99_MS} ms  {mark(p99 <= GOAL_P99_MS)}",
        f"seed ILIKE scan       {len(seed)} lookups, found {seed_found} of {seed_expected} expected;"
        f" mean {seed_mean:.1f} ms, p50 {percentile(seed, 50):.1f} ms, max {percentile(seed, 100):.1f} ms",
        f"speed-up              {speedup:,.0f}x (seed mean / ours mean)   goal >= {GOAL_SPEEDUP:,}x  "
        f"{mark(speedup >= GOAL_SPEEDUP)}",
    ]
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
