# trainbox: `make run` trains the demo, `make test` builds everything and runs every test.
# Each target installs what it needs. Heavy artifacts (the PyTorch environment, cargo's
# target directory, compiled plugins) live in $(TRAINBOX_CACHE), outside the checkout,
# so a machine pays for them once.

TRAINBOX_CACHE ?= $(HOME)/.cache/trainbox
TORCH_VERSION  := 2.13.0
TRANSFORMERS_VERSION := 5.24.0
TORCH_ENV      := $(TRAINBOX_CACHE)/torch-env
PYTHON         := $(TORCH_ENV)/bin/python3
PLUGIN_OUT     := build/plugins
# Plugins built from plugins/<name> into $(PLUGIN_OUT)/<name>.wasm.
PLUGINS        := printer progress recorder early-stopping stopper probe hostile granted

export TRAINBOX_CACHE
export CARGO_TARGET_DIR ?= $(TRAINBOX_CACHE)/target
export LIBTORCH_USE_PYTORCH := 1
export PATH := $(TORCH_ENV)/bin:$(PATH)
# tch loads libtorch from the environment; build.rs also bakes in an rpath.
export TRAINBOX_PYTHON := $(PYTHON)

TRAINBOX := $(CARGO_TARGET_DIR)/release/trainbox

.PHONY: run test plugins host torch-env test-env wasm-target lint bench clean help

help:
	@echo "make run      train the demo (sorting digits) with the default plugins"
	@echo "make test     build everything and run every test"
	@echo "make plugins  build the plugins into $(PLUGIN_OUT)/"
	@echo "make bench    print speed figures"
	@echo "make lint     cargo fmt --check and clippy -D warnings"

# The PyTorch that tch 0.26 links against, in a virtual environment of its own.
$(TORCH_ENV)/.torch-$(TORCH_VERSION):
	python3 -m venv $(TORCH_ENV)
	$(PYTHON) -m pip install --quiet torch==$(TORCH_VERSION)
	touch $@

torch-env: $(TORCH_ENV)/.torch-$(TORCH_VERSION)

# Python readers the tests check our output with (transformers' TrainerState).
$(TORCH_ENV)/.test-$(TRANSFORMERS_VERSION): $(TORCH_ENV)/.torch-$(TORCH_VERSION)
	$(PYTHON) -m pip install --quiet transformers==$(TRANSFORMERS_VERSION) safetensors
	touch $@

test-env: $(TORCH_ENV)/.test-$(TRANSFORMERS_VERSION)

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

plugins: wasm-target
	cd plugins && cargo build --release --target wasm32-wasip2 --workspace
	@mkdir -p $(PLUGIN_OUT)
	@for p in $(PLUGINS); do \
		cp $(CARGO_TARGET_DIR)/wasm32-wasip2/release/trainbox_plugin_$$(echo $$p | tr - _).wasm $(PLUGIN_OUT)/$$p.wasm; \
	done
	@mkdir -p build/testing
	@cp $(CARGO_TARGET_DIR)/wasm32-wasip2/release/not-a-plugin.wasm build/testing/not-a-plugin.wasm
	@echo "plugins: $(PLUGINS) -> $(PLUGIN_OUT)/"

host: torch-env
	cargo build --release

run: host plugins
	$(TRAINBOX) train --task sort --output_dir runs/sort-demo \
		--num_train_epochs 4 --per_device_train_batch_size 64 --per_device_eval_batch_size 256 \
		--learning_rate 1e-3 --warmup_steps 0.05 --weight_decay 0.01 \
		--logging_steps 64 --eval_strategy steps --eval_steps 128 \
		--save_strategy steps --save_steps 256 --save_total_limit 2

test: host plugins test-env
	cargo test --release --workspace
	cd plugins && cargo test --release --workspace

lint:
	cargo fmt --all --check
	cd plugins && cargo fmt --all --check
	cargo clippy --release --workspace --all-targets -- -D warnings
	cd plugins && cargo clippy --release --target wasm32-wasip2 --workspace -- -D warnings

bench: host plugins
	cargo bench --profile release --bench dispatch

clean:
	rm -rf build runs
