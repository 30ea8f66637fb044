# The two set-up commands: `make demo` and `make test`. Both create the virtualenv in .venv when needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE ?= examples/kodim05_crop.png

.PHONY: demo test bench-classical clean-venv

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p out
	$(BIN)/diffdenoise add-noise $(EXAMPLE) -o out/demo_noisy.png --noise poisson_gaussian:0.005,3 --seed 0
	$(BIN)/diffdenoise denoise out/demo_noisy.png -o out/demo_denoised.png --samples 4 --uncertainty out/demo_uncertainty.png --compare out/demo_compare.png --reference $(EXAMPLE)
	@echo "wrote out/demo_noisy.png, out/demo_denoised.png, out/demo_compare.png and out/demo_uncertainty.png"

test: $(STAMP)
	-@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "chromium unavailable: browser test will be skipped"; fi
	$(BIN)/python -m pytest tests

clean-venv:
	rm -rf $(VENV)
