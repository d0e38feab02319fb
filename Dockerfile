# PropOps Sandbox in a container:  docker build -t propops-sandbox . && docker run -p 8080:8080 propops-sandbox
FROM python:3.11-slim

WORKDIR /src
COPY pyproject.toml README.md ./
COPY sandbox ./sandbox
COPY fixtures ./fixtures
COPY scenarios ./scenarios
RUN pip install --no-cache-dir . && rm -rf /src

# Inside a container the sandbox must listen on every interface to be reachable from the host.
ENV PROPOPS_SANDBOX_HOST=0.0.0.0 \
    PROPOPS_SANDBOX_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/api/system/heartbeat?health_check=1')"
ENTRYPOINT ["propops-sandbox"]
CMD ["serve"]
