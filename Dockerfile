# The cti server image. Also renders Asterisk's configuration (`cti asterisk-config`), see
# docker-compose.yml. Build context: the repository root.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY cti ./cti
COPY tickets ./tickets
RUN pip install . && rm -rf /src

# An installed cti finds its data files in <sys.prefix>/share/cti/ (cti/resources.py); sys.prefix is
# /usr/local in this image.
COPY asterisk-config/templates /usr/local/share/cti/asterisk-config/templates
COPY prompts/catalog.toml /usr/local/share/cti/prompts/catalog.toml
COPY demo/services /usr/local/share/cti/demo/services
COPY demo/acd.yaml /usr/local/share/cti/demo/acd.yaml
COPY demo/contacts.csv /usr/local/share/cti/demo/contacts.csv

# espeak-ng + sox speak the placeholder prompts (cti prompts build); ffmpeg converts uploads and voicemail.
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng sox ffmpeg \
 && rm -rf /var/lib/apt/lists/*

# Runs as an unprivileged user whose group (10001) the Asterisk image shares, so both can use the
# media volume. The directories exist in the image so that new named volumes start owned by cti.
RUN groupadd --gid 10001 cti \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin cti \
 && install -d -o cti -g cti -m 2775 /var/lib/cti/media /var/lib/cti/media/prompts /var/lib/cti/media/recordings \
 && install -d -o cti -g cti -m 0750 /etc/asterisk-rendered
USER cti
WORKDIR /var/lib/cti

EXPOSE 8080 4573
CMD ["sh", "-c", "cti db upgrade && exec cti serve"]
