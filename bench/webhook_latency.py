"""Hand-raiser latency: webhook received -> CRM property written, p95 (target <= 2 s).

    python bench/webhook_latency.py --events 50

The worker (`leadscore run --webhooks`, no polling) runs beside the HubSpot sandbox with the
demo portal. For each of N contacts a "Request a demo" form is submitted in the sandbox and a
signed v3 webhook (contact.propertyChange of recent_conversion_event_name) is POSTed; the time
until the sandbox shows the MQL reason on the contact is measured. The last line is p95 / 2 s.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import statistics
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

from _harness import bench_harness

from connector.sandbox.demo_portal import build_portal
from connector.worker.service import WorkerService

SECRET = "bench-client-secret"


def sign(uri: str, body: bytes, ts: str) -> str:
    msg = b"POST" + uri.encode() + body + ts.encode()
    return base64.b64encode(hmac.new(SECRET.encode(), msg, hashlib.sha256).digest()).decode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50)
    args = ap.parse_args()
    portal = build_portal(max(200, args.events), events_per_contact=2, seed=21)
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_harness(portal, state_path=Path(tmp) / "s.db", time_scale=0.01) as b,
    ):
        b.pipeline.sync()  # the initial poll; from here on only webhooks write
        service = WorkerService(
            b.pipeline,
            state_path=Path(tmp) / "s.db",
            sync_interval_s=3600,
            rescore_interval_s=3600,
            client_secret=SECRET,
            webhook_poll_s=0.05,
        )
        service.start(schedule=False)
        latencies: list[float] = []
        try:
            url = service.url + "/webhooks/hubspot"
            for i in range(args.events):
                cid = str(i + 1)
                b.sb.submit_form(cid, "Request a demo", b.clock[0] - timedelta(minutes=1))
                body = json.dumps(
                    [
                        {
                            "eventId": 10_000 + i,
                            "subscriptionId": 1,
                            "portalId": 4242,
                            "occurredAt": int(time.time() * 1000),
                            "subscriptionType": "contact.propertyChange",
                            "objectId": int(cid),
                            "propertyName": "recent_conversion_event_name",
                            "propertyValue": "Request a demo",
                        }
                    ]
                ).encode()
                ts = str(int(time.time() * 1000))
                req = urllib.request.Request(url, data=body, method="POST")
                req.add_header("Content-Type", "application/json")
                req.add_header("X-HubSpot-Signature-v3", sign(url, body, ts))
                req.add_header("X-HubSpot-Request-Timestamp", ts)
                started = time.monotonic()
                with urllib.request.urlopen(req, timeout=5) as resp:
                    assert resp.status == 200
                while time.monotonic() - started < 10:
                    if b.sb.contact(cid).properties.get("leadscore_mql_reason"):
                        break
                    time.sleep(0.005)
                latencies.append(time.monotonic() - started)
        finally:
            service.stop()
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    print(
        f"{len(latencies)} hand-raisers: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms"
    )
    print(f"ratio p95 / 2 s target: {p95 / 2.0:.3f} (target <= 1)")


if __name__ == "__main__":
    main()
