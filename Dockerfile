# Unroll for hosting: a teacher's demo or a replica behind a load balancer.
#   docker build -t unroll .
#   docker run -p 8000:8000 -v unroll-data:/data -e UNROLL_DEMO=1 unroll
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    UNROLL_DATA_DIR=/data

RUN useradd --create-home --uid 10001 unroll
WORKDIR /srv/unroll
COPY pyproject.toml README.md ./
COPY app ./app
COPY static ./static
COPY templates ./templates
COPY docs ./docs
RUN pip install -e . && mkdir -p /data && chown unroll:unroll /data

USER unroll
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["unroll", "serve", "--host", "0.0.0.0", "--port", "8000"]
