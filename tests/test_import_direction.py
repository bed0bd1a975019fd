"""Imports point one way: the web process and the workers load neither TensorFlow nor SciPy nor training code,
and the serving package is pure (no Django). Each check runs in a fresh interpreter, as a process starts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.environments import ROOT, bare_environment

pytestmark = pytest.mark.pure

TRAINING_ONLY = ["tensorflow", "keras", "scipy", "sklearn", "matplotlib", "worker.training", "worker.tools"]

IMPORT_ALL_SERVING = """
import importlib, pkgutil, worker.serving
for module in pkgutil.iter_modules(worker.serving.__path__):
    importlib.import_module(f"worker.serving.{module.name}")
"""


def modules_after(code: str) -> set[str]:
    """The modules loaded by a fresh interpreter that runs `code` (as the web app or a worker would)."""
    # A developer's settings, whatever the suite has set so far: no database or broker is reached by importing.
    env = bare_environment(
        DJANGO_SETTINGS_MODULE="malaria_site.settings", DJANGO_DEBUG="1", DJANGO_SECRET_KEY="import-direction-test"
    )
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def loaded(modules: set[str], names: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == name or m.startswith(f"{name}.") for name in names))


def test_the_web_process_and_the_workers_load_no_training_code():
    modules = modules_after(
        "import malaria_site.wsgi\n"  # django.setup() and the middleware, as gunicorn loads them
        "import malaria_site.urls, malaria_site.celery, worker.tasks, diagnostics.classification\n"
        "from django.urls import get_resolver; get_resolver().url_patterns\n" + IMPORT_ALL_SERVING
    )
    assert {"malaria_site.urls", "worker.tasks", "worker.serving.engine", "diagnostics.views"} <= modules
    assert loaded(modules, TRAINING_ONLY) == []


def test_the_serving_package_is_pure():
    modules = modules_after(IMPORT_ALL_SERVING)
    assert {"worker.serving.engine", "worker.serving.results", "worker.serving.gradcam"} <= modules
    assert loaded(modules, TRAINING_ONLY + ["django", "celery", "diagnostics", "accounts"]) == []


def test_the_web_process_does_not_load_opencv():
    # The engine decodes PNGs with OpenCV; pages and uploads only need Pillow, and OpenCV's libraries would
    # add to every web process's memory for nothing.
    modules = modules_after(
        "import malaria_site.wsgi\nimport malaria_site.urls\n"
        "from django.urls import get_resolver; get_resolver().url_patterns\n"
    )
    assert {"malaria_site.urls", "diagnostics.uploads", "worker.serving.preprocessing"} <= modules
    assert loaded(modules, ["cv2"]) == []
