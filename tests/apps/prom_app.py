"""A test app whose metrics are those of a real Python service: the official
prometheus_client library, a request Counter labelled by route template
(`route="/users/{id}"`, as FastAPI-, axum- and actix-style instrumentation
writes it) and a latency Histogram. It makes its own traffic (50 requests a
second) and answers /metrics and /healthz.

Usage: prom_app.py PORT MODE, MODE one of
  good     no errors, 10-30 ms
  errors   30% of /users/{id} requests answer 500
  slow     no errors, 150 ms slower
  renamed  like good, but its metrics are called app_* instead of http_*
"""

import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

port, mode = int(sys.argv[1]), sys.argv[2]
registry = CollectorRegistry()
prefix = "app" if mode == "renamed" else "http"
requests = Counter(
    f"{prefix}_requests_total", "Requests served.", ["method", "route", "code"], registry=registry
)
latency = Histogram(
    f"{prefix}_request_duration_seconds", "Request latency.", ["route"], registry=registry
)


def traffic():
    rng = random.Random(port)
    n = 0
    while True:
        n += 1
        code = "500" if mode == "errors" and rng.random() < 0.30 else "200"
        seconds = 0.010 + rng.random() * 0.020 + (0.150 if mode == "slow" else 0.0)
        requests.labels("GET", "/users/{id}", code).inc()
        latency.labels("/users/{id}").observe(seconds)
        if n % 5 == 0:
            requests.labels("GET", "/healthz", "200").inc()
            latency.labels("/healthz").observe(0.001)
        time.sleep(0.02)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/metrics":
            body, kind = generate_latest(registry), CONTENT_TYPE_LATEST
        elif self.path == "/healthz":
            body, kind = b"ok\n", "text/plain"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


threading.Thread(target=traffic, daemon=True).start()
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
