# Two commands for a newcomer: `make run` (set up, then start) and `make test`.
PYTHON ?= /root/.pyenv/versions/3.10.13/bin/python3.10
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test setup install browser haproxy clean

run: $(STAMP)
	$(VENV)/bin/hotline run

test: setup browser haproxy
	$(VENV)/bin/python -m pytest

setup: $(STAMP)
	$(VENV)/bin/hotline setup

install: $(STAMP)

# The widget test drives real headless Chromium (Debian's package), with CJK fonts for its screenshots.
browser:
	@(command -v chromium >/dev/null && test -d /usr/share/fonts/opentype/noto) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null)

# `hotline cluster` and its tests put Debian's HAProxy in front of the replicas.
haproxy:
	@command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null)

# Reinstall only when the dependency declarations change; constraints.txt is frozen from a
# clean resolve so that Rasa 3.6's pins (pydantic<1.10.10, websockets<11, …) never float.
$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

clean:
	rm -rf var models/*.tar.gz models/*.fingerprint.json
