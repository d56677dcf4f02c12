"""gunicorn settings shared by every deployment (deploy/systemd, deploy/Dockerfile):
`gunicorn -c python:healthkit.gunicorn_conf healthkit.wsgi:application --bind ...`.

Threaded workers: with sync workers, `timeout` bounds every request, so a streamed export of a
few hundred thousand rows (one to three minutes at the city's scale, docs/scale.md) was killed
half-way and the download ended short. A threaded worker's main thread keeps telling the arbiter
it is alive while a request runs, so `timeout` only catches a worker that hangs as a whole.
Each thread holds its own database connection (and, for ingest batches, a second one:
docs/deploy.md): workers x threads x 2 connections at most."""

import os

worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
accesslog = "-"
