"""The Celery app as a test worker runs it (`celery -A tests.celery_app`): production's app, plus one pause.

With TEST_PAUSE_AFTER_CLAIM=<path>, a pool process that claims a chunk writes the claimed ids to <path>
and then waits, holding the claim, until the test kills the worker: the kill lands mid-chunk by
construction, not by timing. Production runs `-A malaria_site` and never imports this module.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from celery.signals import worker_process_init

from malaria_site.celery import app  # noqa: F401 (the app Celery's -A finds here)

PAUSE_AFTER_CLAIM = "TEST_PAUSE_AFTER_CLAIM"


@worker_process_init.connect
def pause_after_claim_when_asked(**_):
    marker = os.environ.get(PAUSE_AFTER_CLAIM)
    if not marker:
        return
    from diagnostics import classification

    claim = classification.cell_images_claim

    def claim_then_pause(*, image_ids, run=None):
        token, claimed = claim(image_ids=image_ids, run=run)
        if claimed:
            written = Path(f"{marker}.part")
            written.write_text(json.dumps(sorted(image.id for image in claimed)))
            written.replace(marker)  # whole or absent: the test reads it as soon as it appears
            while True:  # holding the claim, as a worker busy classifying does, until SIGKILL
                time.sleep(3600)
        return token, claimed

    # cell_images_classify looks the claim up in its module at call time, so it calls this one.
    classification.cell_images_claim = claim_then_pause
