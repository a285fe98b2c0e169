# resnet-exp: set-up, tests and the main sweep in one command each.
#   make quick   install, fetch the data, a two-minute look: the post/pre sweep cut short, its report
#   make sweep   install, fetch the data, run the post/pre ablation (python -m resnet_exp.run -m block.order=post,pre;
#                ORDERS=post,pre,relu_before_add for other orderings)
#   make report  the report of the latest sweep under outputs/sweeps (or SWEEP=DIR; make quick's are
#                under outputs/quick and make quick writes their report itself)
#   make test    install, fetch the data, run the test suite on the CPU
#   make bench   install, fetch the data, measure training speed against the torchvision reference
#   make gpu-check  on a CUDA machine: the GPU tests, benchmarks and timed sweeps into outputs/gpu_check
#   make experiments   install, fetch the data, run (or resume) every committed experiment and
#                rewrite its report; sweeps go under RUNS (default outputs/experiments)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR := /usr/share/datasets/fashion-mnist
ARGS ?=
RUNS ?= outputs/experiments
# In order: an experiment may reuse the sweeps of one before it (see each run.sh).
EXPERIMENTS := block_order_full_step bf16_vs_fp32_full_step seed_gap bf16_vs_fp32 block_order identity_mappings depth bf16_same_machine tuned_orderings

.PHONY: install data test quick sweep report summary bench gpu-check experiments clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[test]"
	touch $@

# Fashion-MNIST: Debian's package where apt is usable, else torchvision's download into the cache.
data: install
	@if [ -f $(DATA_DIR)/t10k-labels-idx1-ubyte.gz ]; then \
		echo "Fashion-MNIST: $(DATA_DIR)"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) || \
		$(BIN)/python -c "from resnet_exp.data.fashion_mnist import locate; print('Fashion-MNIST:', locate(None, '~/.cache/resnet-exp'))"; \
	elif command -v apt-get >/dev/null && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
		sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist; \
	else \
		$(BIN)/python -c "from resnet_exp.data.fashion_mnist import locate; print('Fashion-MNIST:', locate(None, '~/.cache/resnet-exp'))"; \
	fi

test: data
	$(BIN)/python -m pytest $(ARGS)

ORDERS ?= post,pre
sweep: data
	@case " $(ARGS) " in *" block.order="*) \
		echo "make sweep: the orderings are ORDERS=..., not ARGS (e.g. make sweep ORDERS=post,pre,relu_before_add)"; \
		exit 2;; esac
	$(BIN)/python -m resnet_exp.run -m block.order=$(ORDERS) $(ARGS)

# experiment=quick (conf/experiment/quick.yaml) into a fresh folder, then its report
quick: data
	@dir=outputs/quick/$$(date +%Y-%m-%d_%H-%M-%S); \
	$(BIN)/python -m resnet_exp.run experiment=quick hydra.sweep.dir=$$dir $(ARGS) && \
	$(BIN)/python -m resnet_exp.report $$dir

SWEEP ?= $(shell ls -td outputs/sweeps/*/ 2>/dev/null | head -1)
report: install
	@if [ -z "$(SWEEP)" ]; then echo "no sweep under outputs/sweeps: run make sweep first, or give SWEEP=DIR"; exit 2; fi
	$(BIN)/python -m resnet_exp.report $(SWEEP) $(ARGS)

bench: data
	$(BIN)/python -m resnet_exp.bench $(ARGS)

gpu-check: data
	$(BIN)/python -m resnet_exp.gpu_check $(ARGS)

experiments: data
	@for e in $(EXPERIMENTS); do \
		echo "== experiments/$$e"; \
		PYTHON=$(abspath $(BIN))/python experiments/$$e/run.sh $(RUNS) || exit 1; \
	done

summary: install
	$(BIN)/python -m resnet_exp.summary --size 224 $(ARGS)

clean:
	rm -rf $(VENV) outputs .pytest_cache
