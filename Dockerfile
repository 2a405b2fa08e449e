# One image for every Dispatch process; compose and k8s pick the entry point.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events ./events
COPY services ./services
COPY projections ./projections
RUN pip install --no-cache-dir .
ENV PYTHONUNBUFFERED=1
USER 65532
