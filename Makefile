.PHONY: run test lint bench
ARGS ?=

run:  ## venv, install, relaycast serve (pass flags with ARGS="--http-port 8081")
	scripts/run.sh $(ARGS)

test:  ## venv, test extras, system peers (ffmpeg, srt-tools, nginx-rtmp, gstreamer, postgresql), pytest
	scripts/test.sh $(ARGS)

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
