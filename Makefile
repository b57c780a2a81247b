# trainbox: `make run` trains the demo, `make test` builds everything and runs every test.
# Each target installs what it needs. Heavy artifacts (the PyTorch environment, cargo's
# target directory, compiled plugins) live in $(TRAINBOX_CACHE), outside the checkout,
# so a machine pays for them once.

TRAINBOX_CACHE ?= $(HOME)/.cache/trainbox
TORCH_VERSION  := 2.13.0
TRANSFORMERS_VERSION := 5.24.0
ACCELERATE_VERSION := 1.15.0
TORCH_ENV      := $(TRAINBOX_CACHE)/torch-env
# The real readers and servers the integration tests check our output with.
READERS_ENV    := $(TRAINBOX_CACHE)/readers-env
READERS        := tensorboard==2.21.0 mlflow==3.17.2 dvclive==3.49.1 dvc==3.67.1 wandb==0.31.0 codecarbon==3.3.2 \
                  comet_ml==3.58.8 clearml==2.1.12 neptune==1.14.0.post2 trackio==0.43.0 flask-wtf==1.3.0
# flytekit and its deck renderer, in an environment of their own (they pin their own
# protobuf): the flyte test compares the plugin's deck with a real local flytekit deck.
FLYTE_ENV      := $(TRAINBOX_CACHE)/flyte-env
FLYTE_READERS  := flytekit==1.16.31 flytekitplugins-deck-standard==1.16.31 pandas==3.1.1
# codecarbon's data tables (carbon intensities, CPU TDPs; MIT), taken from its wheel
# on PyPI and embedded in the codecarbon plugin at build time, never committed.
CODECARBON_VERSION := 3.3.2
CODECARBON_DATA := $(TRAINBOX_CACHE)/codecarbon-data-$(CODECARBON_VERSION)
export CODECARBON_DATA_DIR ?= $(CODECARBON_DATA)/codecarbon/data
PYTHON         := $(TORCH_ENV)/bin/python3
PLUGIN_OUT     := build/plugins
# Tools that build plugins in other languages (componentize-py, componentize-js,
# wit-bindgen-cli, wasm-tools, the WASI adapter), installed on first use.
LANG_TOOLS     := $(TRAINBOX_CACHE)/lang-tools
COMPONENTIZE_PY_VERSION := 0.25.1
JCO_VERSION    := 1.35.0
COMPONENTIZE_JS_VERSION := 0.23.0
# componentize-js reads its input through preview2-shim's default "/" preopen,
# which 0.26.1 removed: keep the last version that has it.
PREVIEW2_SHIM_VERSION := 0.26.0
WIT_BINDGEN_VERSION := 0.61.1
WASM_TOOLS_VERSION := 1.258.3
# Plugins in other languages, the examples and the Python test plugins:
# plugins/<dir> -> $(PLUGIN_OUT)/<name>.wasm
EXAMPLES       := examples/python-nan-guard:nan-guard examples/js-csv-logger:csv-logger examples/c-grad-warn:grad-warn \
                  testing/lazy-import-py:lazy-import-py testing/http-py:http-py testing/raiser-py:raiser-py
# Plugins built from plugins/<name> into $(PLUGIN_OUT)/<name>.wasm.
PLUGINS        := printer progress recorder early-stopping tensorboard mlflow dagshub azure_ml dvclive wandb codecarbon comet_ml neptune clearml flyte trackio stopper probe hostile hoarder granted http-probe sleeper sleeper-describe histogrammer impostor peeker
# Plugins also built against the frozen trainbox:callback@0.1.0 (the SDK's
# wit-0-1-0 feature), into $(PLUGIN_OUT)/<name>-v0_1_0.wasm: the host must keep
# serving them. Their own target directory: cargo unifies features per build.
OLD_API_PLUGINS := recorder probe
# What `make run` needs: the default plugins (progress bars, or the printer
# with --disable_tqdm). No other language's toolchain, no codecarbon data.
DEMO_PLUGINS   := printer progress

export TRAINBOX_CACHE
export CARGO_TARGET_DIR ?= $(TRAINBOX_CACHE)/target
export PATH := $(TORCH_ENV)/bin:$(PATH)
# tch loads libtorch from the environment; build.rs also bakes in an rpath.
export TRAINBOX_PYTHON := $(PYTHON)
export TRAINBOX_READERS_PYTHON := $(READERS_ENV)/bin/python3
export TRAINBOX_FLYTE_PYTHON := $(FLYTE_ENV)/bin/python3

TRAINBOX := $(CARGO_TARGET_DIR)/release/trainbox
# The built-in plugins (progress bars, --report_to integrations) that run,
# test and bench use: this checkout's. The binary bakes in no checkout path;
# installed, it finds them in PREFIX/share/trainbox/plugins.
export TRAINBOX_PLUGIN_DIR := $(CURDIR)/$(PLUGIN_OUT)
# `make install`: PREFIX/bin/trainbox and PREFIX/share/trainbox/plugins.
PREFIX ?= $(HOME)/.local
# The plugins an installed trainbox ships: progress bars, the recorder,
# early stopping and every --report_to integration (no test plugins).
SHIPPED_PLUGINS := printer progress recorder early-stopping tensorboard mlflow dagshub azure_ml dvclive \
                   wandb codecarbon comet_ml neptune clearml flyte trackio

.PHONY: python run example test install install-files install-plugins plugins precompile rust-plugins demo-plugins wasm-cc examples wat-plugins lang-tools codecarbon-data host torch-env test-env wasm-target lint bench gpu-check clean help

help:
	@echo "make run      train the demo (sorting digits) with the default plugins"
	@echo "make test     build everything and run every test"
	@echo "make plugins  build the plugins into $(PLUGIN_OUT)/"
	@echo "make bench    print speed figures"
	@echo "make gpu-check  on an NVIDIA GPU machine: the demo on CUDA (fp32, bf16, fp16, 2 processes) against the CPU"
	@echo "make lint     cargo fmt --check and clippy -D warnings"
	@echo "make python   the Python package (trainbox.hf.PluginCallback for HF's Trainer) into the torch env"
	@echo "make example  train your own tch model through the library (host/examples/custom_model.rs)"
	@echo "make install  trainbox on PATH: PREFIX/bin/trainbox with its plugins (PREFIX=$(PREFIX))"

# The PyTorch that tch 0.26 links against, in a virtual environment of its own.
$(TORCH_ENV)/.torch-$(TORCH_VERSION):
	python3 -m venv $(TORCH_ENV)
	$(PYTHON) -m pip install --quiet torch==$(TORCH_VERSION)
	touch $@

# CUDA's compiler-runtime and CCCL headers (0.2 MB and 3 MB), which the torch
# wheel's CUDA packages lack and the NCCL part of crates/torch-ext includes
# (cuda_runtime.h needs crt/host_config.h, cuda_fp16.h needs nv/target).
CUDA_HEADERS   := nvidia-cuda-crt==13.0.88 nvidia-cuda-cccl==13.0.85
$(TORCH_ENV)/.cuda-headers-1: $(TORCH_ENV)/.torch-$(TORCH_VERSION)
	$(PYTHON) -m pip install --quiet --no-deps $(CUDA_HEADERS)
	touch $@

# cargo finds libtorch through build/libtorch, a link to the torch package of
# the environment (.cargo/config.toml's LIBTORCH), so that plain `cargo build`
# and `cargo run --example custom_model` need no variable set by hand.
LIBTORCH_LINK  := build/libtorch
torch-env: $(TORCH_ENV)/.torch-$(TORCH_VERSION) $(TORCH_ENV)/.cuda-headers-1
	@mkdir -p $(dir $(LIBTORCH_LINK)); \
	torch=$$($(PYTHON) -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("torch").origin))'); \
	[ "$$(readlink $(LIBTORCH_LINK))" = "$$torch" ] || ln -sfn "$$torch" $(LIBTORCH_LINK)

# Python readers the tests check our output with (transformers' TrainerState),
# pyarrow, which writes Parquet as `datasets` does, and accelerate, which
# transformers.Trainer needs (the parity test and `make bench` run HF's loop).
# The stamp's `-3` (accelerate added) makes machines that ran an older line
# install again.
$(TORCH_ENV)/.test-$(TRANSFORMERS_VERSION)-3: $(TORCH_ENV)/.torch-$(TORCH_VERSION)
	$(PYTHON) -m pip install --quiet transformers==$(TRANSFORMERS_VERSION) safetensors pyarrow accelerate==$(ACCELERATE_VERSION)
	touch $@

# maturin builds the Python package (python/), pytest runs its tests.
MATURIN_VERSION := 1.16.0
PYTEST_VERSION  := 9.2.0
$(TORCH_ENV)/.py-tools-$(MATURIN_VERSION)-$(PYTEST_VERSION): $(TORCH_ENV)/.torch-$(TORCH_VERSION)
	$(PYTHON) -m pip install --quiet maturin==$(MATURIN_VERSION) pytest==$(PYTEST_VERSION)
	touch $@

$(READERS_ENV)/.readers-3:
	python3 -m venv $(READERS_ENV)
	$(READERS_ENV)/bin/pip install --quiet $(READERS)
	touch $@

$(FLYTE_ENV)/.flyte-1:
	python3 -m venv $(FLYTE_ENV)
	$(FLYTE_ENV)/bin/pip install --quiet $(FLYTE_READERS)
	touch $@

test-env: $(TORCH_ENV)/.test-$(TRANSFORMERS_VERSION)-3 $(READERS_ENV)/.readers-3 $(FLYTE_ENV)/.flyte-1 \
          $(TORCH_ENV)/.py-tools-$(MATURIN_VERSION)-$(PYTEST_VERSION)

# The Python package `trainbox` (python/: PyO3 + maturin, abi3 for CPython >= 3.10),
# built as a wheel into build/wheels and installed into the torch environment,
# where `from trainbox.hf import PluginCallback` then works.
python: $(TORCH_ENV)/.py-tools-$(MATURIN_VERSION)-$(PYTEST_VERSION)
	$(TORCH_ENV)/bin/maturin build --quiet --release -m python/Cargo.toml -o build/wheels
	$(PYTHON) -m pip install --quiet --force-reinstall --no-deps build/wheels/trainbox-0.1.0-cp310-abi3-*.whl

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

# Python: componentize-py in a virtual environment of its own.
$(LANG_TOOLS)/.py-$(COMPONENTIZE_PY_VERSION):
	python3 -m venv $(LANG_TOOLS)/py
	$(LANG_TOOLS)/py/bin/pip install --quiet componentize-py==$(COMPONENTIZE_PY_VERSION)
	touch $@

# JavaScript: componentize-js (and jco, for its copy of the WASI WIT files).
$(LANG_TOOLS)/.js-$(COMPONENTIZE_JS_VERSION)-$(PREVIEW2_SHIM_VERSION):
	mkdir -p $(LANG_TOOLS)/npm
	npm install --prefix $(LANG_TOOLS)/npm --no-fund --no-audit --loglevel=error \
		@bytecodealliance/jco@$(JCO_VERSION) @bytecodealliance/componentize-js@$(COMPONENTIZE_JS_VERSION) \
		@bytecodealliance/preview2-shim@$(PREVIEW2_SHIM_VERSION)
	touch $@

# C: Debian's clang, lld and wasi-libc; wit-bindgen-cli and wasm-tools from
# crates.io; the WASI preview-1 adapter of wasmtime 48.
$(LANG_TOOLS)/.c-$(WIT_BINDGEN_VERSION)-$(WASM_TOOLS_VERSION):
	@if ! command -v clang >/dev/null || ! command -v wasm-ld >/dev/null || [ ! -f /usr/lib/wasm32-wasi/libc.a ]; then \
		echo "installing clang, lld and wasi-libc from Debian"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang lld wasi-libc libclang-rt-dev-wasm32; \
	fi
	cargo install --locked --quiet --root $(LANG_TOOLS) wit-bindgen-cli@$(WIT_BINDGEN_VERSION)
	cargo install --locked --quiet --root $(LANG_TOOLS) wasm-tools@$(WASM_TOOLS_VERSION)
	cargo run --release --quiet -p wasi-adapter -- $(LANG_TOOLS)/adapters
	touch $@

lang-tools: $(LANG_TOOLS)/.py-$(COMPONENTIZE_PY_VERSION) $(LANG_TOOLS)/.js-$(COMPONENTIZE_JS_VERSION)-$(PREVIEW2_SHIM_VERSION) \
	$(LANG_TOOLS)/.c-$(WIT_BINDGEN_VERSION)-$(WASM_TOOLS_VERSION)

examples: lang-tools
	@mkdir -p $(PLUGIN_OUT)
	@for e in $(EXAMPLES); do \
		dir=$${e%%:*}; name=$${e##*:}; \
		$(MAKE) --no-print-directory -C plugins/$$dir TOOLS=$(LANG_TOOLS) \
			BUILD=$(CURDIR)/build/$$dir OUT=$(CURDIR)/$(PLUGIN_OUT)/$$name.wasm || exit 1; \
	done

# Hostile plugins written as wasm text (no language runtime), for the
# sandbox's table limits.
wat-plugins: lang-tools
	@$(MAKE) --no-print-directory -C plugins/testing/wat-tables TOOLS=$(LANG_TOOLS) \
		BUILD=$(CURDIR)/build/testing/wat-tables OUT=$(CURDIR)/$(PLUGIN_OUT)

# Ends by compiling them into the compile cache when the host is built
# (a Python plugin then loads in ~0.3 s instead of ~5 s); `make precompile`
# builds the host first. A run finds them there (same cache directory).
plugins: rust-plugins examples wat-plugins
	@if [ -x $(TRAINBOX) ]; then $(TRAINBOX) plugins precompile $(PLUGIN_OUT) || echo "plugins: precompiling failed (the plugins are built; a run compiles them itself)"; \
	else echo "plugins: no host binary yet, the compile cache is not filled (make precompile does)"; fi

# Every built plugin into the compile cache ($(TRAINBOX_CACHE)/compiled).
precompile: host plugins
	$(TRAINBOX) plugins precompile $(PLUGIN_OUT)

$(CODECARBON_DATA)/.ok:
	python3 -m pip download --quiet --no-deps --only-binary=:all: codecarbon==$(CODECARBON_VERSION) -d $(CODECARBON_DATA)/wheel
	python3 -m zipfile -e $(CODECARBON_DATA)/wheel/codecarbon-$(CODECARBON_VERSION)-py3-none-any.whl $(CODECARBON_DATA)
	touch $@

codecarbon-data: $(CODECARBON_DATA)/.ok

# Copies built plugin crates trainbox_plugin_<name>.wasm to $(PLUGIN_OUT)/<name>.wasm.
copy-plugins = @mkdir -p $(PLUGIN_OUT); for p in $(1); do \
		cp $(CARGO_TARGET_DIR)/wasm32-wasip2/release/trainbox_plugin_$$(echo $$p | tr - _).wasm $(PLUGIN_OUT)/$$p.wasm; \
	done

# C inside Rust plugins (the trackio plugin's bundled SQLite), compiled by
# Debian's clang against wasi-libc's headers and archived by llvm-ar (see
# plugins/.cargo/config.toml). The demo plugins need none of it.
wasm-cc:
	@if ! command -v clang >/dev/null || ! command -v llvm-ar >/dev/null || [ ! -f /usr/include/wasm32-wasi/stdio.h ]; then \
		echo "installing clang, llvm and wasi-libc from Debian"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang llvm wasi-libc; \
	fi

demo-plugins: wasm-target
	cd plugins && cargo build --release --target wasm32-wasip2 $(foreach p,$(DEMO_PLUGINS),-p trainbox-plugin-$(p))
	$(call copy-plugins,$(DEMO_PLUGINS))

rust-plugins: wasm-target wasm-cc codecarbon-data
	cd plugins && cargo build --release --target wasm32-wasip2 --workspace
	$(call copy-plugins,$(PLUGINS))
	@mkdir -p build/testing
	@cp $(CARGO_TARGET_DIR)/wasm32-wasip2/release/not-a-plugin.wasm build/testing/not-a-plugin.wasm
	cd plugins && cargo build --release --target wasm32-wasip2 --target-dir $(CARGO_TARGET_DIR)/wit-0.1.0 \
		--features trainbox-sdk/wit-0-1-0 $(foreach p,$(OLD_API_PLUGINS),-p trainbox-plugin-$(p))
	@for p in $(OLD_API_PLUGINS); do \
		cp $(CARGO_TARGET_DIR)/wit-0.1.0/wasm32-wasip2/release/trainbox_plugin_$$(echo $$p | tr - _).wasm $(PLUGIN_OUT)/$$p-v0_1_0.wasm; \
	done
	@echo "plugins: $(PLUGINS) -> $(PLUGIN_OUT)/; built against trainbox:callback@0.1.0: $(OLD_API_PLUGINS)"

host: torch-env
	cargo build --release

# Builds, then copies the binary and the shipped plugins where it looks.
install: host rust-plugins
	@$(MAKE) --no-print-directory install-files

# Copies what is built, building nothing (tools/test-install.sh uses it);
# install-plugins copies the plugins alone (after `cargo install --path host`).
install-files: install-plugins
	install -d $(PREFIX)/bin
	install -m 755 $(TRAINBOX) $(PREFIX)/bin/trainbox
	@echo "installed $(PREFIX)/bin/trainbox"

install-plugins:
	install -d $(PREFIX)/share/trainbox/plugins
	install -m 644 $(foreach p,$(SHIPPED_PLUGINS),$(PLUGIN_OUT)/$(p).wasm) $(PREFIX)/share/trainbox/plugins/
	@echo "installed the plugins in $(PREFIX)/share/trainbox/plugins"

# The demo starts afresh each time: a run refuses an output_dir that holds
# another run's checkpoints.
run: host demo-plugins
	rm -rf runs/sort-demo
	$(TRAINBOX) train --task sort --output_dir runs/sort-demo \
		--num_train_epochs 4 --per_device_train_batch_size 64 --per_device_eval_batch_size 256 \
		--learning_rate 1e-3 --warmup_steps 0.05 --weight_decay 0.01 \
		--logging_steps 64 --eval_strategy steps --eval_steps 128 \
		--save_strategy steps --save_steps 256 --save_total_limit 2

# Your own tch model through the library (host/examples/custom_model.rs),
# with the demo plugins; EXAMPLE_ARGS adds plugin files.
example: torch-env demo-plugins
	cargo run --release --example custom_model -- $(EXAMPLE_ARGS)

# The MLflow tests (mlflow, dagshub, azure_ml) need tracking servers: the
# script starts three on 127.0.0.1 (plain; basic-auth under DagsHub's
# prefix; under an Azure ML workspace prefix), in parallel, for the
# duration of the tests and stops them after.
test: host plugins precompile test-env python
	tools/with-mlflow-server.sh $(READERS_ENV)/bin/mlflow sh -c \
	    'cargo test --release --workspace && $(PYTHON) -m pytest -q python/tests'
	cd plugins && cargo test --release --workspace
	tools/test-install.sh
	tools/test-downstream.sh
	tools/test-pip-install.sh $(PYTHON) $(CURDIR)/$(PLUGIN_OUT)

lint: torch-env codecarbon-data wasm-cc
	cargo fmt --all --check
	cd plugins && cargo fmt --all --check
	cargo clippy --release --workspace --all-targets -- -D warnings
	cd plugins && cargo clippy --release --target wasm32-wasip2 --workspace -- -D warnings

# What plugins cost (benches/dispatch.rs), beside HF's callback dispatch
# measured in the same run (bench/hf_dispatch.py), a plugin's first load with
# an empty and a filled compile cache (bench/startup.py), the loop itself on the demo model
# against a plain PyTorch loop and HF's Trainer (bench/loop.py), then a tiny GPT-2 trained by
# trainbox (`--model`), a plain PyTorch loop and HF's Trainer, side by side
# (bench/own_model.py): steps/s, tokens/s, peak memory. Then data parallel:
# one all-reduce of the demo's gradients and of the control flags
# (benches/allreduce.rs), and the demo with 1 and 2 processes, one thread
# each, with the scaling efficiency (bench/ddp.py). Last, trainbox plugins inside
# HF's Trainer (bench/hf_plugins.py): a wasm plugin's event beside a Python
# callback's, and HF's steps/s with and without plugins. And the memory a
# logged step costs, beside HF's Trainer (bench/log_memory.py).
bench: host plugins precompile test-env python
	@mkdir -p build
	@(cargo bench --profile release --bench dispatch; echo $$? > build/bench-dispatch.rc) | tee build/bench-dispatch.txt; exit $$(cat build/bench-dispatch.rc)
	$(PYTHON) bench/hf_dispatch.py --trainbox-output build/bench-dispatch.txt
	$(PYTHON) bench/startup.py --trainbox $(TRAINBOX) --plugin-dir $(PLUGIN_OUT)
	$(PYTHON) bench/loop.py --trainbox $(TRAINBOX)
	$(PYTHON) bench/own_model.py --trainbox $(TRAINBOX)
	cargo bench --profile release --bench allreduce
	$(PYTHON) bench/ddp.py --trainbox $(TRAINBOX)
	$(PYTHON) bench/hf_plugins.py --plugin-dir $(PLUGIN_OUT)
	$(PYTHON) bench/log_memory.py --trainbox $(TRAINBOX)

# On a machine with an NVIDIA GPU: builds, trains the demo on CUDA in float32,
# bf16 and fp16, with two processes through torchrun, and on the CPU, and
# prints steps/s side by side (tools/gpu-check.sh; fails without CUDA).
gpu-check:
	tools/gpu-check.sh

clean:
	rm -rf build runs
