# The ledger's image: the CLI, the relay and the consumers.
FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ledger ledger
COPY schemas schemas
COPY consumers consumers
COPY audit audit
RUN pip install --no-cache-dir .
ENV LEDGER_DATA_DIR=/data
VOLUME ["/data"]
ENTRYPOINT ["mutual-ledger"]
CMD ["--help"]
