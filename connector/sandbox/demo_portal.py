"""Seeded generators of HubSpot sandbox portals (the fixture format of ``load_portal``).

* :func:`build_demo_portal` - the demo portal: twelve hand-written personas ("101".."112") whose
  engagement the scoring tests rely on, plus ``extra_contacts`` seeded filler contacts
  ("113"...) so the portal has a few thousand events, then the Northwind Data buying committee
  (four contacts after the fillers, "153".."156" by default) and the companies
  (:data:`DEMO_COMPANIES`, ids 9001..) with every corporate contact associated with its
  company as primary. Its output (``seed=7, extra_contacts=40``) is committed as
  ``fixtures/hubspot_demo_portal.json``::

      python -m connector.sandbox.demo_portal > fixtures/hubspot_demo_portal.json

* :func:`build_portal` - a large, plain portal for paging tests and benchmarks
  (25,000 contacts in well under a second, no personas).

All timestamps are relative to ``ANCHOR`` ("day -1" = the calendar day before the anchor's
day, between 08:00 and 20:00 UTC); the sandbox shifts them to the present when it loads them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

ANCHOR = "2026-11-01T12:00:00Z"
PORTAL_ID = 4242
SITE = "https://www.leadscore-demo.com"
WEBINAR_ATTENDED = f"pe{PORTAL_ID}_webinar_attended"
WEBINAR_REGISTERED = f"pe{PORTAL_ID}_webinar_registered"
FORM_NAMES: tuple[str, ...] = (
    "Contact Us",
    "Request a demo",
    "Download the scoring guide",
    "Newsletter signup",
    "Start a free trial",
)
_FORM_PAGES = {
    "Contact Us": "/contact",
    "Request a demo": "/demo",
    "Download the scoring guide": "/resources/scoring-guide",
    "Newsletter signup": "/blog",
    "Start a free trial": "/signup",
}
_FORM_FIELDS = {
    "Contact Us": ["email", "firstname", "lastname", "company", "jobtitle"],
    "Request a demo": ["email", "firstname", "lastname", "company", "jobtitle"],
    "Download the scoring guide": ["email", "firstname", "lastname", "company"],
    "Newsletter signup": ["email"],
    "Start a free trial": ["email", "firstname", "lastname", "company"],
}
WEBINARS = ("Scoring that sales trusts", "Pipeline forecasting basics", "MQL to SQL in 30 days")
CAMPAIGNS = {  # id -> name (for the curious; the v1 API only returns the id)
    2001: "October newsletter",
    2002: "Scoring guide launch",
    2003: "Webinar invite: Scoring that sales trusts",
    2004: "Product update: explain every point",
    2005: "Case study: Acme Analytics",
    2006: "Pricing update",
    2007: "September newsletter",
    2008: "Webinar recording",
}

BLOG = (
    ("/blog/lead-scoring-101", "Lead scoring 101"),
    ("/blog/mql-vs-sql", "MQL vs SQL: where to draw the line"),
    ("/blog/score-decay", "Why your lead scores need decay"),
    ("/blog/fit-vs-engagement", "Fit vs engagement: two numbers, not one"),
    ("/blog/hand-raisers", "Treat hand-raisers differently"),
    ("/blog/sales-marketing-sla", "The sales and marketing SLA"),
    ("/blog/negative-scoring", "Negative scoring done right"),
    ("/blog/webinar-scoring", "How much is a webinar worth?"),
)
DOCS = (
    ("/docs/getting-started", "Getting started"),
    ("/docs/hubspot-integration", "HubSpot integration"),
    ("/docs/scoring-model", "The scoring model file"),
    ("/docs/api", "API reference"),
    ("/docs/explain", "Explaining a score"),
)
PRODUCT = (
    ("/product/scoring", "Lead scoring"),
    ("/product/integrations", "Integrations"),
    ("/product/reports", "Conversion reports"),
    ("/product/explain", "Explained scores"),
)
PRICING = ("/pricing", "Pricing")
FEATURES = ("/features", "Features")
CAREERS = (("/careers", "Careers"), ("/careers/open-roles", "Open roles"))
INDEED = "https://www.indeed.com/viewjob?jk=abc"

FIRST_NAMES = (
    "Avery", "Blake", "Cameron", "Devon", "Elliot", "Finley", "Harper", "Hayden", "Jesse",
    "Kendall", "Logan", "Marley", "Noel", "Oakley", "Parker", "Quinn", "Reese", "Rowan",
    "Sawyer", "Skyler", "Emma", "Liam", "Olivia", "Noah", "Sofia", "Lucas", "Mia", "Mateo",
    "Aisha", "Kenji", "Ingrid", "Tomasz", "Lena", "Ravi", "Chloe", "Diego", "Hannah", "Omar",
)  # fmt: skip
LAST_NAMES = (
    "Anderson", "Bennett", "Carter", "Dalton", "Ellis", "Foster", "Garcia", "Hughes", "Iversen",
    "Jensen", "Kowalski", "Larsen", "Martinez", "Nakamura", "O'Brien", "Patel", "Quintero",
    "Reyes", "Schmidt", "Tanaka", "Underwood", "Vasquez", "Walsh", "Young", "Zimmerman",
    "Okafor", "Lindgren", "Moreau", "Rossi", "Novak",
)  # fmt: skip
TITLES = (
    "Marketing Manager", "Demand Generation Manager", "VP Marketing", "CMO",
    "Marketing Operations Manager", "Head of Growth", "Revenue Operations Analyst",
    "Director of Sales", "Account Executive", "Sales Development Representative",
    "Content Marketing Specialist", "Marketing Coordinator", "Product Marketing Manager",
    "CEO", "Founder", "Software Engineer", "Data Analyst", "Office Manager", "Consultant",
    "Marketing Intern", "Director of Demand Generation", "Head of Marketing",
)  # fmt: skip
COMPANY_DOMAINS = {
    "acme-analytics.com": "Acme Analytics",
    "initech.com": "Initech",
    "globex.co.uk": "Globex",
    "northwind-logistics.com": "Northwind Logistics",
    "umbrella-health.com": "Umbrella Health",
    "hooli.io": "Hooli",
    "stark-industries.com": "Stark Industries",
    "wayne-enterprises.com": "Wayne Enterprises",
    "tinyshop.io": "TinyShop",
}
FREE_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com")
# The demo companies (id, name, domain, employees, industry, annual revenue USD, country,
# additional domains): the industry as HubSpot's dropdown stores it (its internal value, whose
# label in lower case is the firmographics file's industry: connector.industries); the
# firmographics of fixtures/firmographics.csv for the corporate domains
# of the demo contacts, the Northwind Data buying committee's company and one company a rep
# created without a domain (no contacts).
DEMO_COMPANIES: tuple[tuple[str, str, str, int, str, int, str, str], ...] = (
    ("9001", "Acme Analytics", "acme-analytics.com", 850, "COMPUTER_SOFTWARE", 120_000_000, "US",
     "acmeanalytics.io"),
    ("9002", "Initech", "initech.com", 300, "INFORMATION_TECHNOLOGY_AND_SERVICES", 45_000_000,
     "CA", "initech.ca"),
    ("9003", "Globex", "globex.co.uk", 12000, "FINANCIAL_SERVICES", 2_100_000_000, "GB",
     "globex.com;globex-group.com"),
    ("9004", "Northwind Logistics", "northwind-logistics.com", 2400, "LOGISTICS_AND_SUPPLY_CHAIN",
     400_000_000, "DE", "northwind-logistics.de"),
    ("9005", "Umbrella Health", "umbrella-health.com", 7000, "HOSPITAL_HEALTH_CARE",
     900_000_000, "US", ""),
    ("9006", "Hooli", "hooli.io", 1500, "INTERNET", 250_000_000, "US", "hooli.com"),
    ("9007", "Stark Industries", "stark-industries.com", 40000, "MACHINERY", 9_000_000_000, "US",
     "starkindustries.com"),
    ("9008", "Wayne Enterprises", "wayne-enterprises.com", 25000, "FINANCIAL_SERVICES",
     5_000_000_000, "US", ""),
    ("9009", "TinyShop", "tinyshop.io", 4, "RETAIL", 300_000, "US", ""),
    ("9010", "RivalScore", "rivalscore.io", 120, "COMPUTER_SOFTWARE", 15_000_000, "US", ""),
    ("9011", "Stanford University", "stanford.edu", 15000, "HIGHER_EDUCATION", 0, "US", ""),
    ("9012", "Northwind Data", "northwind-data.com", 400, "COMPUTER_SOFTWARE", 60_000_000, "US",
     ""),
    ("9013", "Vandelay Industries", "", 140, "IMPORT_AND_EXPORT", 32_000_000, "US", ""),
)  # fmt: skip
NORTHWIND_DATA = "9012"
# a contact associated with a second company (unlabeled): its primary company still wins
SECOND_COMPANY = ("108", "9008")
COUNTRIES = (("US", 40), ("GB", 15), ("CA", 10), ("DE", 10), ("FR", 6), ("AU", 6), ("IN", 8),
             ("NL", 5))  # fmt: skip
REFERRERS = (
    ("", 45),
    ("https://www.google.com/", 30),
    ("https://www.linkedin.com/", 12),
    ("https://www.bing.com/", 5),
    ("https://news.ycombinator.com/", 4),
    ("https://www.g2.com/categories/lead-scoring", 4),
)


def form_id(name: str) -> str:
    """Stable GUID of a demo form (independent of the seed)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"leadscore-demo/forms/{name}"))


def _anchor_dt(anchor: str) -> datetime:
    return datetime.fromisoformat(anchor.replace("Z", "+00:00")).astimezone(UTC)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class _Builder:
    """Accumulates a fixture dict; every random choice comes from one seeded RNG."""

    def __init__(self, seed: int, anchor: str = ANCHOR, portal_id: int = PORTAL_ID) -> None:
        self.rng = random.Random(seed)
        self.anchor = anchor
        self.portal_id = portal_id
        self.anchor_dt = _anchor_dt(anchor)
        self.midnight = self.anchor_dt.replace(hour=0, minute=0, second=0, microsecond=0)
        self.contacts: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.email_events: list[dict[str, Any]] = []
        self.companies: list[dict[str, Any]] = []
        self.associations: list[dict[str, Any]] = []

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def at(self, day: int, hour: int | None = None, minute: int | None = None) -> str:
        """A timestamp on day ``day`` relative to the anchor's day (08:00-19:59 UTC)."""
        h = self.rng.randint(8, 19) if hour is None else hour
        m = self.rng.randint(0, 59) if minute is None else minute
        s = self.rng.randint(0, 59)
        ms = self.rng.randint(0, 999)
        dt = self.midnight + timedelta(days=day, hours=h, minutes=m, seconds=s, milliseconds=ms)
        return _iso(dt)

    def contact(
        self,
        cid: str,
        first: str,
        last: str,
        email: str,
        title: str | None,
        stage: str,
        *,
        company: str | None = None,
        country: str | None = None,
        created_day: int = -200,
        **extra: str,
    ) -> None:
        props: dict[str, str] = {"email": email, "firstname": first, "lastname": last}
        if title:
            props["jobtitle"] = title
        if company:
            props["company"] = company
        if country:
            props["country"] = country
        props["lifecyclestage"] = stage
        props.update(extra)
        props["createdate"] = self.at(created_day)
        props["lastmodifieddate"] = self.at(min(created_day + 3, -1))
        self.contacts.append({"id": cid, "properties": props})

    def view(
        self, cid: str, day: int, page: tuple[str, str], referrer: str = "", **at: int
    ) -> None:
        path, title = page
        self.events.append(
            {
                "id": self.uid(),
                "eventType": "e_visited_page",
                "objectId": cid,
                "occurredAt": self.at(day, **at),
                "properties": {
                    "hs_url": SITE + path,
                    "hs_referrer": referrer,
                    "hs_page_title": title,
                },
            }
        )

    def form(self, cid: str, day: int, name: str, **at: int) -> None:
        self.events.append(
            {
                "id": self.uid(),
                "eventType": "e_submitted_form",
                "objectId": cid,
                "occurredAt": self.at(day, **at),
                "properties": {
                    "hs_form_id": form_id(name),
                    "hs_form_title": name,
                    "hs_url": SITE + _FORM_PAGES[name],
                },
            }
        )

    def webinar(self, cid: str, day: int, name: str, watched: int, total: int = 60) -> None:
        self.events.append(
            {
                "id": self.uid(),
                "eventType": f"pe{self.portal_id}_webinar_attended",
                "objectId": cid,
                "occurredAt": self.at(day),
                "properties": {
                    "webinar_name": name,
                    "minutes_watched": str(watched),
                    "webinar_minutes": str(total),
                },
            }
        )

    def registered(self, cid: str, day: int, name: str) -> None:
        self.events.append(
            {
                "id": self.uid(),
                "eventType": f"pe{self.portal_id}_webinar_registered",
                "objectId": cid,
                "occurredAt": self.at(day),
                "properties": {"webinar_name": name},
            }
        )

    def mail(
        self, recipient: str, kind: str, day: int, campaign: int, url: str | None = None
    ) -> None:
        event: dict[str, Any] = {
            "id": self.uid(),
            "type": kind,
            "recipient": recipient,
            "created": self.at(day),
            "emailCampaignId": campaign,
        }
        if url is not None:
            event["url"] = url
        self.email_events.append(event)

    def fixture(self, forms: bool = True, archived: list[str] | None = None,
                merges: list[list[str]] | None = None) -> dict[str, Any]:  # fmt: skip
        self.events.sort(key=lambda e: (e["occurredAt"], e["id"]))
        self.email_events.sort(key=lambda e: (e["created"], e["id"]))
        return {
            "portal_id": self.portal_id,
            "anchor": self.anchor,
            "groups": [],
            "properties": [
                {
                    "name": "lead_source_detail",
                    "label": "Lead source detail",
                    "type": "string",
                    "fieldType": "text",
                    "groupName": "contactinformation",
                    "description": "Free-text note on where the lead came from.",
                }
            ],
            "forms": [
                {
                    "id": form_id(name),
                    "name": name,
                    "fields": _FORM_FIELDS[name],
                    "createdAt": _iso(self.midnight - timedelta(days=400 - 10 * i)),
                }
                for i, name in enumerate(FORM_NAMES)
            ]
            if forms
            else [],
            "contacts": self.contacts,
            "events": self.events,
            "email_events": self.email_events,
            "merges": merges or [],
            "archived": archived or [],
            "companies": self.companies,
            "associations": self.associations,
        }


def _add_personas(b: _Builder) -> None:
    blog_docs = [*BLOG, *DOCS]
    # 1. Dana: a hot, well-fitting lead: 32 blog/docs views, pricing twice, a full webinar.
    b.contact("101", "Dana", "Whitfield", "dana.whitfield@acme-analytics.com", "VP Marketing",
              "lead", company="Acme Analytics", country="US", created_day=-150)  # fmt: skip
    per_day = {-12: 2, -11: 2, -10: 3, -9: 2, -8: 3, -7: 2, -6: 3, -5: 2, -4: 3, -3: 3, -2: 4,
               -1: 3}  # fmt: skip
    n = 0
    for day, count in per_day.items():
        for k in range(count):
            referrer = "https://www.google.com/" if n == 0 else ("" if k == 0 else SITE + "/blog")
            b.view("101", day, blog_docs[n % len(blog_docs)], referrer, hour=9 + k)
            n += 1
    b.view("101", -2, PRICING, SITE + "/blog", hour=15)
    b.view("101", -1, PRICING, SITE + "/docs/getting-started", hour=15)
    b.webinar("101", -5, "Scoring that sales trusts", 58, 60)
    # 2. Riley: free-mail freelancer who asks for a demo.
    b.contact("102", "Riley", "Chen", "riley.chen1987@gmail.com", "Freelance designer", "lead",
              created_day=-40)  # fmt: skip
    b.view("102", -1, BLOG[0], "https://www.google.com/", hour=10, minute=5)
    b.view("102", -1, BLOG[3], SITE + BLOG[0][0], hour=10, minute=12)
    b.form("102", -1, "Request a demo", hour=10, minute=20)
    # 3. Jordan: a job seeker.
    b.contact("103", "Jordan", "Pike", "jordan.pike@outlook.com", "Software Engineer", "lead",
              created_day=-20)  # fmt: skip
    b.view("103", -6, BLOG[1])
    b.view("103", -5, BLOG[2])
    b.view("103", -4, CAREERS[0], INDEED)
    b.view("103", -3, CAREERS[1], INDEED)
    b.view("103", -2, CAREERS[1], INDEED)
    # 4. Morgan: a competitor checking pricing and features, then "Contact Us".
    b.contact("104", "Morgan", "Blake", "morgan@rivalscore.io", "Product Marketing Manager",
              "lead", company="RivalScore", created_day=-15)  # fmt: skip
    b.view("104", -3, PRICING, "https://www.google.com/", hour=10)
    b.view("104", -3, FEATURES, SITE + "/pricing", hour=11)
    b.view("104", -2, PRICING, "", hour=9)
    b.view("104", -2, FEATURES, SITE + "/pricing", hour=10)
    b.form("104", -2, "Contact Us", hour=11)
    # 5. Priya: a student, some blog reading, a third of a webinar.
    b.contact("105", "Priya", "Natarajan", "priya.n@stanford.edu", "Student", "subscriber",
              company="Stanford University", created_day=-90)  # fmt: skip
    for day in (-14, -11, -8, -5, -3):
        b.view("105", day, BLOG[(day * -1) % len(BLOG)])
    b.webinar("105", -7, "Scoring that sales trusts", 20, 60)
    # 6. Alex: product pages and marketing e-mail engagement.
    b.contact("106", "Alex", "Moreno", "alex.moreno.mktg@gmail.com", "Marketing Director",
              "lead", created_day=-60)  # fmt: skip
    for i, day in enumerate((-6, -5, -4, -3)):
        b.view("106", day, PRODUCT[i % len(PRODUCT)])
    for day in (-7, -5, -3):
        b.mail("alex.moreno.mktg@gmail.com", "OPEN", day, 2001 if day == -7 else 2004)
    for day in (-5, -3):
        b.mail("alex.moreno.mktg@gmail.com", "CLICK", day, 2004, SITE + "/product/explain")
    # 7. Casey: was hot three months ago, nothing since (decay).
    b.contact("107", "Casey", "Lindqvist", "casey@initech.com", "Director of Sales Operations",
              "lead", company="Initech", country="CA", created_day=-400)  # fmt: skip
    b.view("107", -98, PRICING, "https://www.google.com/")
    b.webinar("107", -95, "Pipeline forecasting basics", 60, 60)
    b.view("107", -92, PRICING)
    # 8. Taylor: already an SQL with sales' own lead status.
    b.contact("108", "Taylor", "Brooks", "taylor.brooks@globex.co.uk",
              "Head of Revenue Operations", "salesqualifiedlead", company="Globex",
              created_day=-120, hs_lead_status="CONNECTED")  # fmt: skip
    for i, day in enumerate((-9, -6, -2)):
        b.view("108", day, BLOG[(i + 4) % len(BLOG)])
    # 9./10. Sam: a merged pair (survivor 109, older duplicate 110).
    b.contact("109", "Sam", "Ortiz", "sam.ortiz@northwind-logistics.com", "Marketing Manager",
              "lead", company="Northwind Logistics", created_day=-45)  # fmt: skip
    for i, day in enumerate((-6, -5, -4)):
        b.view("109", day, PRODUCT[i])
    b.contact("110", "Sam", "Ortiz", "sam.ortiz@northwind-logistics.com", None, "subscriber",
              created_day=-300)  # fmt: skip
    b.view("110", -30, BLOG[5], "https://www.linkedin.com/")
    b.view("110", -25, BLOG[6])
    # 11. Jamie: archived.
    b.contact("111", "Jamie", "Fox", "jamie.fox@tinyshop.io", "Owner", "lead",
              company="TinyShop", created_day=-80)  # fmt: skip
    b.view("111", -20, BLOG[0])
    # 12. Robin: Dana's colleague, product pages and the scoring guide.
    b.contact("112", "Robin", "Hale", "robin.hale@acme-analytics.com", "Marketing Manager",
              "lead", company="Acme Analytics", created_day=-50)  # fmt: skip
    for i, day in enumerate((-10, -9, -7, -6, -4, -3)):
        b.view("112", day, PRODUCT[i % len(PRODUCT)])
    b.form("112", -2, "Download the scoring guide")


def _weighted(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _filler_identity(rng: random.Random, used: set[str]) -> tuple[str, str, str, str | None]:
    for _ in range(1000):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if rng.random() < 0.25:
            domain = rng.choice(FREE_DOMAINS)
            local = f"{first}.{last}{rng.randint(1, 99)}".lower().replace("'", "")
            company = None
        else:
            domain = rng.choice(list(COMPANY_DOMAINS))
            local = f"{first}.{last}".lower().replace("'", "")
            company = COMPANY_DOMAINS[domain]
        email = f"{local}@{domain}"
        if email not in used:
            used.add(email)
            return first, last, email, company
    raise RuntimeError("could not find a unique filler e-mail")  # pragma: no cover


def _add_fillers(b: _Builder, first_id: int, count: int) -> None:
    rng = b.rng
    used = {c["properties"]["email"] for c in b.contacts}
    # careers pages are a trait of a few job seekers, not a share of everybody's browsing
    sections = (("blog", 40), ("docs", 18), ("product", 20), ("pricing", 8), ("features", 8))
    pages = {"blog": BLOG, "docs": DOCS, "product": PRODUCT, "pricing": (PRICING,),
             "features": (FEATURES,), "careers": CAREERS}  # fmt: skip
    campaign_days = {2007: -56, 2006: -49, 2005: -42, 2008: -35, 2003: -28, 2002: -21,
                     2001: -14, 2004: -7}  # fmt: skip
    for n in range(count):
        cid = str(first_id + n)
        first, last, email, company = _filler_identity(rng, used)
        stage = "subscriber" if rng.random() < 0.3 else "lead"
        b.contact(
            cid, first, last, email, rng.choice(TITLES), stage, company=company,
            country=_weighted(rng, COUNTRIES), created_day=-rng.randint(10, 400),
        )  # fmt: skip
        level = rng.random()
        n_views = (
            rng.randint(4, 20) if level < 0.4 else rng.randint(20, 70) if level < 0.8 else
            rng.randint(70, 160)
        )  # fmt: skip
        horizon = rng.choice((30, 60, 60, 120))
        referrer = _weighted(rng, REFERRERS)
        for k in range(n_views):
            section = _weighted(rng, sections)
            page = rng.choice(pages[section])
            b.view(cid, -rng.randint(1, horizon), page, referrer if k == 0 else "")
        if rng.random() < 0.1:  # a job seeker: the careers pages, more than once
            for _ in range(rng.randint(2, 4)):
                b.view(cid, -rng.randint(1, horizon), rng.choice(CAREERS), "")
        for campaign, day in campaign_days.items():
            if rng.random() < 0.03:
                b.mail(email, "BOUNCE", day, campaign)
                continue
            b.mail(email, "DELIVERED", day, campaign)
            if rng.random() < 0.4:
                b.mail(email, "OPEN", day + rng.randint(0, 2), campaign)
                if rng.random() < 0.3:
                    b.mail(email, "CLICK", day + rng.randint(0, 2), campaign, SITE + BLOG[0][0])
        if n == 0:
            b.mail(email, "UNSUBSCRIBED", -4, 2004)
        if rng.random() < 0.25:
            b.form(cid, -rng.randint(1, horizon), "Newsletter signup")
        if rng.random() < 0.15:
            b.form(cid, -rng.randint(1, horizon), "Download the scoring guide")
        if rng.random() < 0.15:
            name = rng.choice(WEBINARS)
            day = -rng.randint(3, horizon)
            b.registered(cid, day - 7, name)
            if rng.random() < 0.6:
                b.webinar(cid, day, name, rng.randint(5, 60), 60)


def _add_buying_committee(b: _Builder, first_id: int) -> list[str]:
    """Northwind Data: four people, none an MQL alone (each well under 100 points, none a
    hand-raiser), together an engaged account: 4 people active in 30 days, decision-maker,
    manager and practitioners, two of them on pricing/product pages within 7 days."""
    ids = [str(first_id + i) for i in range(4)]
    vp, mgr, analyst, revops = ids
    domain = "northwind-data.com"
    people = (
        (vp, "Elena", "Marsh", "VP Marketing", -150),
        (mgr, "Marcus", "Lee", "Marketing Manager", -90),
        (analyst, "Nadia", "Okafor", "Data Analyst", -60),
        (revops, "Tom", "Becker", "Revenue Operations Analyst", -40),
    )
    for cid, first, last, title, created in people:
        email = f"{first}.{last}@{domain}".lower()
        b.contact(cid, first, last, email, title, "lead", company="Northwind Data",
                  country="US", created_day=created)  # fmt: skip
    # VP Marketing: two product pages, a single pricing view, an e-mail click.
    b.view(vp, -12, PRODUCT[0], "https://www.google.com/", hour=9)
    b.view(vp, -5, PRODUCT[1], "", hour=10)
    b.view(vp, -4, PRICING, SITE + PRODUCT[1][0], hour=16)
    b.mail("elena.marsh@northwind-data.com", "DELIVERED", -7, 2004)
    b.mail("elena.marsh@northwind-data.com", "OPEN", -6, 2004)
    b.mail("elena.marsh@northwind-data.com", "CLICK", -6, 2004, SITE + "/product/explain")
    # Marketing Manager: half a webinar, a product page and a pricing view the same day.
    b.registered(mgr, -17, "Scoring that sales trusts")
    b.webinar(mgr, -10, "Scoring that sales trusts", 32, 60)
    b.view(mgr, -3, PRODUCT[2], "", hour=11)
    b.view(mgr, -3, PRICING, SITE + PRODUCT[2][0], hour=11, minute=30)
    # Data Analyst: product pages a week apart, pricing once.
    b.view(analyst, -8, PRODUCT[3], "https://www.linkedin.com/", hour=14)
    b.view(analyst, -2, PRODUCT[0], "", hour=13)
    b.view(analyst, -2, PRICING, SITE + PRODUCT[0][0], hour=13, minute=40)
    # RevOps Analyst: newsletter e-mails, a blog post, one integrations page.
    for day, campaign in ((-14, 2001), (-7, 2004)):
        b.mail("tom.becker@northwind-data.com", "DELIVERED", day, campaign)
        b.mail("tom.becker@northwind-data.com", "OPEN", day + 1, campaign)
    b.mail("tom.becker@northwind-data.com", "CLICK", -13, 2001, SITE + BLOG[0][0])
    b.view(revops, -13, BLOG[0], "", hour=12)
    b.view(revops, -6, PRODUCT[1], "", hour=15)
    return ids


def _add_companies(b: _Builder) -> None:
    """The companies of :data:`DEMO_COMPANIES`; every contact whose e-mail domain is a company's
    domain is associated with it as primary; one contact also with a second company."""
    by_domain: dict[str, str] = {}
    for n, (cid, name, domain, employees, industry, revenue, country, aliases) in enumerate(
        DEMO_COMPANIES
    ):
        props: dict[str, str] = {"name": name, "numberofemployees": str(employees),
                                 "industry": industry, "country": country}  # fmt: skip
        if domain:
            props["domain"] = domain
            by_domain[domain] = cid
        if revenue:
            props["annualrevenue"] = str(revenue)
        if aliases:
            props["hs_additional_domains"] = aliases
        created = b.midnight - timedelta(days=500 - 5 * n, hours=-10)
        props["createdate"] = _iso(created)
        props["hs_lastmodifieddate"] = _iso(created + timedelta(days=2))
        b.companies.append({"id": cid, "properties": props})
    for c in b.contacts:
        domain = c["properties"]["email"].rsplit("@", 1)[1]
        if domain in by_domain:
            b.associations.append({"contact": c["id"], "company": by_domain[domain],
                                   "primary": True})  # fmt: skip
    contact, company = SECOND_COMPANY
    b.associations.append({"contact": contact, "company": company, "primary": False})


def build_demo_portal(seed: int = 7, extra_contacts: int = 40) -> dict[str, Any]:
    """The demo portal: personas "101".."112", ``extra_contacts`` filler contacts, the
    Northwind Data buying committee after them, and the companies with their associations."""
    b = _Builder(seed)
    _add_personas(b)
    _add_fillers(b, 113, extra_contacts)
    _add_buying_committee(b, 113 + extra_contacts)
    _add_companies(b)
    return b.fixture(archived=["111"], merges=[["109", "110"]])


def build_portal(
    n_contacts: int,
    events_per_contact: int = 2,
    seed: int = 1,
    *,
    email_events_per_contact: int = 0,
    anchor: str = ANCHOR,
    portal_id: int = PORTAL_ID,
    first_id: int = 1,
) -> dict[str, Any]:
    """A large plain portal: ids ``first_id``..; createdate within the last 400 days,
    lastmodifieddate within the last 60, ``events_per_contact`` page views each."""
    rng = random.Random(seed)
    anchor_dt = _anchor_dt(anchor)
    anchor_ms = int(anchor_dt.timestamp() * 1000)
    day = 86_400_000
    domains = [*COMPANY_DOMAINS, *FREE_DOMAINS]
    contacts: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    mails: list[dict[str, Any]] = []
    kinds = ("DELIVERED", "OPEN", "CLICK")
    all_pages = [*BLOG, *DOCS, *PRODUCT, PRICING, FEATURES]

    def iso(ms: int) -> str:
        return _iso(datetime.fromtimestamp(ms / 1000, UTC))

    for i in range(n_contacts):
        cid = str(first_id + i)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = domains[i % len(domains)]
        email = f"{first}.{last}.{cid}@{domain}".lower().replace("'", "")
        created = anchor_ms - rng.randint(day, 400 * day)
        modified = max(created, anchor_ms - rng.randint(60_000, 60 * day))
        props = {
            "email": email,
            "firstname": first,
            "lastname": last,
            "jobtitle": rng.choice(TITLES),
            "company": COMPANY_DOMAINS.get(domain, ""),
            "lifecyclestage": "subscriber" if rng.random() < 0.3 else "lead",
            "createdate": iso(created),
            "lastmodifieddate": iso(modified),
        }
        contacts.append({"id": cid, "properties": props})
        for _ in range(events_per_contact):
            path, title = rng.choice(all_pages)
            events.append(
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "eventType": "e_visited_page",
                    "objectId": cid,
                    "occurredAt": iso(anchor_ms - rng.randint(60_000, 90 * day)),
                    "properties": {
                        "hs_url": SITE + path,
                        "hs_referrer": "",
                        "hs_page_title": title,
                    },
                }
            )
        for _ in range(email_events_per_contact):
            mails.append(
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "type": rng.choice(kinds),
                    "recipient": email,
                    "created": iso(anchor_ms - rng.randint(60_000, 90 * day)),
                    "emailCampaignId": rng.choice(list(CAMPAIGNS)),
                }
            )
    return {
        "portal_id": portal_id,
        "anchor": anchor,
        "properties": [],
        "forms": [{"id": form_id(name), "name": name} for name in FORM_NAMES],
        "contacts": contacts,
        "events": events,
        "email_events": mails,
        "merges": [],
        "archived": [],
    }


def dumps_fixture(data: dict[str, Any]) -> str:
    """JSON with one record per line (readable diffs, loads with any JSON parser)."""
    lines = ["{"]
    keys = list(data)
    for i, key in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        value = data[key]
        if isinstance(value, list) and value:
            lines.append(f"  {json.dumps(key)}: [")
            for j, item in enumerate(value):
                tail = "," if j < len(value) - 1 else ""
                lines.append("    " + json.dumps(item, ensure_ascii=False) + tail)
            lines.append("  ]" + comma)
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the HubSpot demo portal fixture (JSON).")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--extra-contacts", type=int, default=40)
    args = parser.parse_args(argv)
    sys.stdout.write(dumps_fixture(build_demo_portal(args.seed, args.extra_contacts)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
