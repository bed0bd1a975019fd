"""What one batch client does under `make bench-load` (worker/tools/bench_load.py starts Locust on it).

Each simulated client signs in with its own token (BENCH_TOKENS, one per client), makes a patient and a
sample, then keeps uploading cells (20 a request) and now and then a field photograph, and reads its sample
and the sample list, as a lab's batch client polling for results would.
"""

from __future__ import annotations

import itertools
import os
import random
from pathlib import Path

from locust import HttpUser, between, task

TOKENS = os.environ["BENCH_TOKENS"].split(",")
DATA = Path(os.environ["BENCH_DATA"])
CELLS = sorted((DATA / "cells").iterdir())
FIELDS = sorted((DATA / "fields").iterdir())
_numbers = itertools.count()


class BatchClient(HttpUser):
    wait_time = between(0.2, 1.0)

    def on_start(self):
        number = next(_numbers)
        self.client.headers["Authorization"] = f"Bearer {TOKENS[number % len(TOKENS)]}"
        patient = self.client.post("/api/v1/patients", json={"identifier": f"LOAD-{number}"}).json()
        self.sample = self.client.post("/api/v1/samples", json={"patient": patient["id"]}).json()["id"]
        self.cells = itertools.cycle(random.Random(number).sample(CELLS, len(CELLS)))
        self.fields = itertools.cycle(random.Random(number).sample(FIELDS, len(FIELDS)))

    @task(4)
    def upload_cells(self):
        files = [("images", (path.name, path.read_bytes(), "image/png")) for path in itertools.islice(self.cells, 20)]
        with self.client.post(
            f"/api/v1/samples/{self.sample}/images", files=files, name="upload 20 cells", catch_response=True
        ) as response:
            # A duplicate of a cell already in the sample (the cycle came round) is a 400 the client expects.
            if response.status_code == 400 and "duplicate" in response.text:
                response.success()

    @task(1)
    def upload_field(self):
        path = next(self.fields)
        with self.client.post(
            f"/api/v1/samples/{self.sample}/fields",
            files=[("fields", (path.name, path.read_bytes(), "image/jpeg"))],
            name="upload 1 field",
            catch_response=True,
        ) as response:
            if response.status_code == 400 and "duplicate" in response.text:
                response.success()

    @task(6)
    def read_sample(self):
        self.client.get(f"/api/v1/samples/{self.sample}", name="read sample")

    @task(2)
    def list_samples(self):
        self.client.get("/api/v1/samples?page_size=20", name="list samples")
