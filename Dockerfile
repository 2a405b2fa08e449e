# One image for every Dispatch process; compose and k8s pick the entry point.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
# Pinned, hash-checked dependencies first; the project adds nothing unpinned.
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY events ./events
COPY services ./services
COPY projections ./projections
RUN pip install --no-cache-dir --no-deps --no-build-isolation .
# Owned by the runtime user, so a volume mounted here (compose's generated
# callback secret) is writable by it.
RUN install -d -o 65532 -g 65532 -m 0700 /run/dispatch-secrets
ENV PYTHONUNBUFFERED=1
USER 65532
