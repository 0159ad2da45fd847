FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY channels channels
COPY routing routing
COPY storage storage
RUN pip install --no-cache-dir .
ENV RALLYPOINT_HOST=0.0.0.0
EXPOSE 8000
CMD ["rallypoint", "serve"]
