"""Seeded synthetic contacts and events, shared by tests and benchmarks (no I/O)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

from connector.types import Company, Contact, Enrichment, Event

TITLES = [
    "VP Marketing",
    "Marketing Manager",
    "Director of Demand Generation",
    "CEO",
    "Student",
    "Account Executive",
    "Software Engineer",
    "Head of Growth",
    "Marketing Intern",
    "RevOps Manager",
    "Chief of Staff",
    "Product Owner",
    "Founder",
    None,
]
DOMAINS = [
    (
        "acme-analytics.com",
        Company(
            "acme-analytics.com",
            "Acme",
            "computer software",
            None,
            850,
            None,
            120e6,
            None,
            "US",
            None,
            "local_csv",
            "2026-10-01",
        ),
    ),
    (
        "initech.com",
        Company(
            "initech.com",
            "Initech",
            "information technology and services",
            None,
            300,
            None,
            45e6,
            None,
            "CA",
            None,
            "local_csv",
            "2026-10-01",
        ),
    ),
    (
        "tinyshop.io",
        Company(
            "tinyshop.io",
            "Tiny Shop",
            "retail",
            None,
            4,
            None,
            3e5,
            None,
            "US",
            None,
            "local_csv",
            "2026-10-01",
        ),
    ),
    ("gmail.com", None),
    (
        "rivalscore.io",
        Company(
            "rivalscore.io",
            "RivalScore",
            "computer software",
            None,
            120,
            None,
            15e6,
            None,
            "US",
            None,
            "local_csv",
            "2026-10-01",
        ),
    ),
]
PAGES = [
    "/blog/post-{n}",
    "/docs/start",
    "/pricing",
    "/product/scoring",
    "/features",
    "/",
    "/careers",
    "/integrations/hubspot",
    "/blog/post-{n}",
    "/blog/post-{n}",
]
FORMS = ["Contact Us", "Request a demo", "Newsletter signup", "Download the scoring guide"]


def synth_contact(i: int, rng: random.Random) -> tuple[Contact, Enrichment]:
    domain, company = DOMAINS[rng.randrange(len(DOMAINS))]
    kind = "free" if company is None else "corporate"
    contact = Contact(
        id=str(100000 + i),
        email=f"person{i}@{domain}",
        job_title=TITLES[rng.randrange(len(TITLES))],
        lifecycle_stage=rng.choice(["subscriber", "lead", "lead", "marketingqualifiedlead"]),
    )
    return contact, Enrichment(kind, domain, company)  # type: ignore[arg-type]


def synth_events(contact_id: str, n: int, now: datetime, rng: random.Random) -> list[Event]:
    out: list[Event] = []
    for j in range(n):
        t = now - timedelta(seconds=rng.randrange(0, 90 * 86400))
        r = rng.random()
        if r < 0.7:
            page = PAGES[rng.randrange(len(PAGES))].format(n=rng.randrange(50))
            attrs: dict[str, object] = {"url": "https://example.com" + page}
            if rng.random() < 0.05:
                attrs["referrer"] = "https://www.indeed.com/viewjob"
            typ = "page_view"
        elif r < 0.85:
            typ, attrs = rng.choice(["email_open", "email_click"]), {"campaign": "nov"}
        elif r < 0.93:
            typ, attrs = "webinar_attended", {"name": "W", "watched_share": rng.random()}
        elif r < 0.99:
            typ, attrs = "form_submit", {"form": FORMS[rng.randrange(len(FORMS))]}
        else:
            typ, attrs = "email_unsubscribe", {}
        out.append(Event("synth", f"{contact_id}-{j}", contact_id, typ, t, attrs))
    return out


def synth_dataset(
    n_contacts: int, events_per_contact: int, now: datetime, seed: int = 42
) -> Iterator[tuple[Contact, Enrichment, list[Event]]]:
    rng = random.Random(seed)
    for i in range(n_contacts):
        contact, enrichment = synth_contact(i, rng)
        yield contact, enrichment, synth_events(contact.id, events_per_contact, now, rng)
