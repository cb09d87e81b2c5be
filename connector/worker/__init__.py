"""The long-running worker: `leadscore run` (scheduler, /healthz, /metrics, webhooks) and
`leadscore backfill`.

Modules:
- `service`: `WorkerService`, everything `leadscore run` starts, wired around one pipeline;
- `scheduler`: `Worker`, the APScheduler jobs (incremental sync, due-contacts rescore) around one
  lock, with a cooperative stop at committed boundaries;
- `passes`: the passes besides `Pipeline.sync()` (due-contacts rescore, webhook refresh);
- `backfill`: the resumable history pull that never moves the live cursors;
- `webhooks`: HubSpot signature v3, event de-duplication, the hand-raiser queue;
- `server`: the HTTP endpoint (`/healthz`, `/metrics`, `POST /webhooks/hubspot`);
- `metrics`: the Prometheus registry fed from each run's summary;
- `logs`: JSON log lines and the secret-redacting filter;
- `cli`: the click commands `run` and `backfill` (registered by `connector.cli.PLUGINS`).
"""
