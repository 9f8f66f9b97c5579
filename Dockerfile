# mk-import as a container: `docker run … mk-import:latest run /data/in/export.csv --mapping cdk …`
# Build stage: turn the project into a wheel. Nothing of it but the wheel reaches the final image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY importer ./importer
COPY mappings ./mappings
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Runtime stage: the wheel installed non-editable (its dependencies ship prebuilt wheels, so no compiler),
# no pip cache, a non-root user, state and reports on volumes, no credentials baked in.
FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 mkimport \
    && mkdir -p /data/state /data/out /data/in \
    && chown mkimport /data/state /data/out
COPY sample_data/*.csv sample_data/*.txt /opt/mk-import/sample_data/
USER mkimport
# The state file of each department lives in /data/state/mk-import/<department>.sqlite.
ENV XDG_STATE_HOME=/data/state \
    PYTHONUNBUFFERED=1
WORKDIR /data/out
VOLUME ["/data/state", "/data/out"]
ENTRYPOINT ["mk-import"]
CMD ["--help"]
