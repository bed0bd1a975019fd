# One image for web and worker. The serving path needs no TensorFlow (the model runs on LiteRT).

# The pages' scripts (Firebase JS SDK and our own), bundled from npm packages: no CDN at run time.
FROM node:20-bookworm-slim AS frontend
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY frontend frontend
RUN npm run build

# Pinned to a release with the zipfile fix for overlapping entries (CVE-2024-0450, fixed in 3.11.8); uploads
# refuse such archives themselves too (diagnostics/uploads.py).
FROM python:3.11.14-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# PDF reports (WeasyPrint) lay text out with Pango, in a font from the image itself (no web fonts).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
RUN useradd --create-home --uid 1000 malaria
COPY pyproject.toml README.md ./
COPY accounts accounts
COPY diagnostics diagnostics
COPY malaria_site malaria_site
COPY worker worker
COPY templates templates
COPY static static
COPY --from=frontend /app/static/build static/build
COPY manage.py ./
RUN pip install --upgrade pip && pip install .
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && mkdir -p /data/media && chown malaria /data/media
USER malaria
EXPOSE 8000
CMD ["gunicorn", "malaria_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120"]
