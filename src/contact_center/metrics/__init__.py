"""What the on-call engineer watches: Prometheus metrics at GET /metrics, and /healthz.

- instruments.py: what each process counts as it happens (callbacks, dispatch latency, provider
  errors, live subscribers, request latency); every process has its own, Prometheus sums them.
- database.py: the totals that live in the database (messages by channel and state, what waits to
  be dispatched, the job queues), read at scrape time, so every web process answers the same.
- access.py: who may scrape (a Bearer token, an allow-list, or this machine only).
- api.py: the /metrics route; middleware.py: request latency and request ids; health.py: /healthz;
  worker_server.py: the same /metrics for `contact-center worker --metrics-port`.
"""
