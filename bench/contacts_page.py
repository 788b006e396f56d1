"""The contacts page's list at a million contacts, on a fresh migrated SQLite database.

    uv run python bench/contacts_page.py [--contacts 1000000] [--rounds 30]

Fills the table with fictitious contacts ("Cliente N", mobiles from a formula, every tenth with a
CPF), then times contacts.service.list_contacts as the contacts page calls it (newest first, pages
by id, the count stopped at 10,001) against the way the API pages (OFFSET, and a count of every
match), in the same process on the same database: the first page, a page half-way down and the
last page; a search by a phone (written another way), by a CPF, by a name fragment many contacts
share and by one nobody has. Prints p50 / p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from contact_center import phones
from contact_center.contacts import service
from contact_center.contacts.models import Contact
from contact_center.db import make_engine, make_session_factory, utcnow
from contact_center.migrations import upgrade
from contact_center.web.contacts import COUNT_CAP, PAGE_SIZE

CHUNK = 20_000


def cpf(i: int) -> str:
    digits = [int(d) for d in f"{(i * 7907 + 100_000_001) % 1_000_000_000:09d}"]
    for position in (9, 10):
        digits.append(sum(d * w for d, w in zip(digits, range(position + 1, 1, -1))) * 10 % 11 % 10)
    return "".join(map(str, digits))


DDDS = ("11", "21", "31", "41", "48", "51", "61", "71", "81", "85")


def mobile(i: int) -> str:
    return f"+55{DDDS[i % len(DDDS)]}9{i:08d}"


def written(i: int) -> str:
    """The same mobile as an operator types it: (48) 90001-2345."""
    digits = f"{i:08d}"
    return f"({DDDS[i % len(DDDS)]}) 9{digits[:4]}-{digits[4:]}"


def fill(session_factory, count: int) -> None:
    sample = phones.identify(mobile(12_345))
    assert sample.e164 == sample.key == mobile(12_345), sample  # the key a search computes
    now = utcnow()
    for start in range(1, count + 1, CHUNK):
        rows = [{"name": f"Cliente {i}", "mobile": mobile(i), "mobile_e164": mobile(i), "mobile_key": mobile(i),
                 "document": cpf(i) if i % 10 == 0 else None, "opt_out_sms": False, "opt_out_whatsapp": False,
                 "opt_out_marketing": False, "created_at": now, "updated_at": now}
                for i in range(start, min(start + CHUNK, count + 1))]
        with session_factory() as session:  # Core executemany: the ORM's bulk path reads ids back, 20x slower
            session.connection().execute(insert(Contact.__table__), rows)
            session.commit()


def timed(call, rounds: int) -> tuple[float, float, object]:
    samples, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))], result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        upgrade(engine)
        factory = make_session_factory(engine)
        started = time.perf_counter()
        fill(factory, args.contacts)
        print(f"{args.contacts:,} contacts written in {time.perf_counter() - started:.1f} s")
        n = args.contacts
        cases = {
            "first page": ({}, 0),
            "half-way down": ({"before_id": n // 2}, n // 2),
            "last page": ({"before_id": PAGE_SIZE + 1}, n - PAGE_SIZE),
            "phone, written another way": ({"search": written(n // 3)}, 0),
            "CPF": ({"search": cpf(5000)}, 0),
            "name many share ('Cliente 1')": ({"search": "Cliente 1"}, 0),
            "name nobody has": ({"search": "Ninguém Assim"}, 0),
        }
        print(f"\n{'':32} {'page (keyset, count ≤ 10,001)':>32} {'API (OFFSET, full count)':>28}")
        with factory() as session:
            for label, (options, offset) in cases.items():
                search = options.get("search")
                page = timed(lambda: service.list_contacts(
                    session, search=search, limit=PAGE_SIZE + 1, newest_first=True,
                    before_id=options.get("before_id"), count_cap=COUNT_CAP + 1), args.rounds)
                api = timed(lambda: service.list_contacts(session, search=search, offset=offset, limit=PAGE_SIZE),
                            max(3, args.rounds // 5))
                found, total = page[2]
                print(f"{label:32} {page[0]:9.2f} / {page[1]:7.2f} ms ({len(found):>2} rows, {min(total, COUNT_CAP + 1):>6,} counted)"
                      f" {api[0]:10.2f} / {api[1]:7.2f} ms ({api[2][1]:,} counted)")
        engine.dispose()


if __name__ == "__main__":
    main()
