"""The duplicates report (contacts/duplicates.py) on a generated database of 1M contacts.

    uv run python bench/contact_duplicates.py [--contacts 1000000] [--url sqlite:///...|postgresql+psycopg://...]

1. fills a fresh, migrated database (SQLite in a temporary directory unless --url names one) with
   fictitious contacts: every 100th has the number of an earlier one (in the other phone field,
   half of them in WhatsApp's 12-digit form), every 200th its email, and every 500th is known to
   WhatsApp by an earlier contact's number (a wa_id identifier);
2. times the first page (50 groups), a page from the middle of the phone groups, and a walk
   through every page of the report (200 groups a page), and checks that the walk found every
   planted group;
3. prints the figures (no goal is set for them; the README quotes them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sqlalchemy.orm import sessionmaker  # noqa: E402

from contact_center import phones  # noqa: E402
from contact_center.contacts import duplicates  # noqa: E402
from contact_center.db import DriverCursor, make_engine, utcnow  # noqa: E402
from contact_center.migrations import upgrade  # noqa: E402

DDDS = ["11", "21", "31", "41", "48", "51", "61", "71", "81", "85"]


def mobile(i: int) -> str:
    """A distinct fictitious mobile per i: +55 DDD 9 8xxx-xxxx."""
    return f"+55{DDDS[i % len(DDDS)]}98{i:07d}"


def old_form(e164: str) -> str:
    """WhatsApp's 12-digit form of a Brazilian mobile (no ninth digit, no '+')."""
    return e164[1:5] + e164[6:]


def fill(engine, count: int) -> dict[str, int]:
    """Insert `count` contacts and the planted duplicates; returns how many groups of each were planted."""
    planted = {"phone": 0, "email": 0, "wa_id": 0}
    chunk = 50_000
    with engine.begin() as connection:
        driver = DriverCursor(connection)
        stamp = driver.timestamp(utcnow())
        for first in range(1, count + 1, chunk):
            contacts, identifiers = [], []
            for i in range(first, min(first + chunk, count + 1)):
                phone = phone_e164 = phone_key = None
                number, email = mobile(i), f"cliente{i}@example.com"
                if i % 100 == 0:  # the same number as contact i - 50, written in the phone field
                    twin = mobile(i - 50)
                    phone = old_form(twin) if i % 200 == 0 else twin
                    phone_e164, phone_key = phones.normalize(phone), phones.match_key(phone)
                    planted["phone"] += 1
                if i % 200 == 100:
                    email = f"cliente{i - 7}@example.com"
                    planted["email"] += 1
                if i % 500 == 250:  # WhatsApp knows contact i by contact i - 3's number
                    identifiers.append((i, "wa_id", old_form(mobile(i - 3)), stamp))
                    planted["wa_id"] += 1
                contacts.append((i, f"Cliente {i}", phone, phone_e164, phone_key, number, number, number, email,
                                 stamp, stamp))
            driver.executemany(
                "INSERT INTO contacts (id, name, phone, phone_e164, phone_key, mobile, mobile_e164, mobile_key, email, "
                "opt_out_sms, opt_out_whatsapp, opt_out_marketing, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, false, false, false, ?, ?)", contacts)
            driver.executemany("INSERT INTO contact_identifiers (contact_id, kind, value, created_at) "
                               "VALUES (?, ?, ?, ?)", identifiers)
        driver.execute("ANALYZE contacts" if connection.dialect.name == "postgresql" else "ANALYZE")
    return planted


def timed(factory, **options) -> tuple[float, list, str | None]:
    with factory() as session:
        started = time.perf_counter()
        groups, after = duplicates.report(session, **options)
        return (time.perf_counter() - started) * 1000, groups, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--url", default="", help="an empty database to fill (default: SQLite in a temporary dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        url = args.url or f"sqlite:///{directory}/duplicates.db"
        engine = make_engine(url)
        upgrade(engine)
        started = time.perf_counter()
        planted = fill(engine, args.contacts)
        print(f"{args.contacts:,} contacts on {engine.dialect.name}, filled in {time.perf_counter() - started:.1f} s; "
              f"planted groups: {planted}")
        factory = sessionmaker(engine)

        first = [timed(factory, limit=50) for _ in range(5)]
        first_ms = statistics.median(ms for ms, _, _ in first)
        middle_cursor = f"phone:{mobile(args.contacts // 2)}"
        middle_ms = statistics.median(timed(factory, after=middle_cursor, limit=50)[0] for _ in range(5))

        found = {"phone": 0, "email": 0, "wa_id": 0}
        page_ms, after, started = [], None, time.perf_counter()
        while True:
            ms, groups, after = timed(factory, after=after, limit=200)
            page_ms.append((ms, groups[0].reason if groups else "-", groups[-1].reason if groups else "-"))
            for group in groups:
                found[group.reason] += 1
            if after is None:
                break
        walk_s = time.perf_counter() - started
        slowest = max(page_ms)
        engine.dispose()

    print(f"first page (50 groups): {first_ms:.1f} ms (median of 5)")
    print(f"a page from the middle of the phone groups (50 groups): {middle_ms:.1f} ms (median of 5)")
    print(f"every page (200 groups each): {len(page_ms)} pages, {sum(found.values()):,} groups in {walk_s:.1f} s "
          f"(page p50 {statistics.median(ms for ms, _, _ in page_ms):.0f} ms; slowest {slowest[0]:.0f} ms, from "
          f"{slowest[1]} to {slowest[2]} groups); found {found}")
    if found != planted:
        print(f"MISMATCH: planted {planted}, found {found}")
        sys.exit(1)


if __name__ == "__main__":
    main()
