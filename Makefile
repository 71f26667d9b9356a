# tinysense: `make train export` builds every model bundle into models/<name>/.
# Targets are files, so make rebuilds only what is out of date.

PYTHON ?= python3
VENV ?= .venv
# The project's virtual environment when `make setup` made one, else the tools on PATH.
BIN := $(if $(wildcard $(VENV)/bin/tinysense),$(VENV)/bin/,)
TINYSENSE ?= $(BIN)tinysense
PY ?= $(if $(BIN),$(BIN)python,$(PYTHON))
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian / Raspberry Pi OS packages: speech synthesizers for the synthetic corpus, PortAudio and ALSA
# for the microphone, fonts for printed digits, g++ for the firmware check.
APT_PACKAGES := python3-venv python3-dev g++ espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k \
	festvox-us-slt-hts portaudio19-dev libasound2-plugins alsa-utils sox fonts-dejavu-core fonts-dejavu-extra \
	fonts-freefont-ttf fonts-liberation2 fonts-dseg
# Extra arguments for training runs, e.g. make train DIGITS_ARGS="--data ../shared/data/mnist"
DIGITS_ARGS ?=

TRAIN_TARGETS := models/digits/keras/model.keras
EXPORT_TARGETS := models/digits/manifest.json
BENCH_MODELS := models/digits

.PHONY: setup setup-edge demo train export test bench clean

setup: ## apt packages + .venv with everything (training, tests)
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'

setup-edge: ## a Raspberry Pi that only runs models: no TensorFlow
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv portaudio19-dev libasound2-plugins
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[edge]'

models/digits/keras/model.keras:
	$(TINYSENSE) train digits --out models/digits $(DIGITS_ARGS)

models/digits/manifest.json: models/digits/keras/model.keras
	$(TINYSENSE) export models/digits

test:
	$(PY) -m pytest -q

# section: core

# section: kws

# section: listen

# section: camera

# section: firmware

# section: aggregate (after every section, so each one's += has happened)
train: $(TRAIN_TARGETS)

export: $(EXPORT_TARGETS)

bench: export
	@for model in $(BENCH_MODELS); do $(TINYSENSE) bench $$model || exit 1; done

demo: export ## train, export and benchmark every model on the embedded default data
	@for model in $(BENCH_MODELS); do $(TINYSENSE) -q bench $$model --json $$model/bench.json || exit 1; done

clean:
	rm -rf models
