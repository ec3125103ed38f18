# kpimon worker / simulator image (docker-compose.yml builds it as `kpimon:latest`).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Dependencies first so code changes do not reinstall them (README.md* : the glob tolerates its absence).
COPY pyproject.toml README.md* ./
COPY kpimon ./kpimon
COPY catalog ./catalog
COPY streams ./streams
COPY detectors ./detectors
COPY alerting ./alerting
COPY grafana ./grafana
RUN pip install . && useradd --system --uid 10001 --home-dir /var/lib/kpimon --create-home kpimon

USER kpimon
WORKDIR /var/lib/kpimon
EXPOSE 9108
ENTRYPOINT ["kpimon"]
CMD ["--help"]
