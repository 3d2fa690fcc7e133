# The image for every Firebreak service in docker-compose.yaml: the Airflow image plus the
# locked dependencies and this repo (the firebreak library and CLI), nothing installed at start.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:0 requirements.lock pyproject.toml /opt/firebreak-src/
RUN pip install --no-cache-dir -r /opt/firebreak-src/requirements.lock
COPY --chown=airflow:0 include /opt/firebreak-src/include
RUN pip install --no-cache-dir --no-deps -e /opt/firebreak-src
