# Thin wrapper over CMake. The README's two commands:
#   make run    install missing packages, build, train the built-in default job
#   make test   install missing packages, build, run the test suite, then run it again built
#               with AddressSanitizer and UndefinedBehaviorSanitizer
BUILD      ?= build
BUILD_SAN  ?= build-sanitize
JOBS       ?= $(shell nproc)

.PHONY: all deps build run test test-fast test-sanitize bench fuzz format clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/paropt train --model mnist_mlp --data fashion-mnist --epochs 1 --devices auto --plan auto

test-fast: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-sanitize: deps
	@cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DPO_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_SAN) -j $(JOBS)
	ctest --test-dir $(BUILD_SAN) --output-on-failure -j $(JOBS)

test: test-fast test-sanitize

# Benchmarks against PyTorch (installs the peer packages first).
bench: build
	@scripts/deps.sh --peer
	bench/bench_train.sh

# 60 s of libFuzzer on each reader: safetensors, IDX, CIFAR-10, events files, cluster files (needs clang). Each target grows
# its own copy of the seed corpus (libFuzzer adds what it finds to the first corpus folder).
fuzz:
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DPO_FUZZ=ON -DPO_SANITIZE=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzz_safetensors fuzz_idx fuzz_cifar fuzz_tfevents \
		fuzz_cluster
	mkdir -p build-fuzz/corpus && cp tests/fuzz/corpus_safetensors/* build-fuzz/corpus/
	./build-fuzz/tests/fuzz/fuzz_safetensors -dict=tests/fuzz/safetensors.dict -max_total_time=60 build-fuzz/corpus
	mkdir -p build-fuzz/corpus_idx && cp tests/fuzz/corpus_idx/* build-fuzz/corpus_idx/
	./build-fuzz/tests/fuzz/fuzz_idx -max_total_time=60 build-fuzz/corpus_idx
	mkdir -p build-fuzz/corpus_cifar && cp tests/fuzz/corpus_cifar/* build-fuzz/corpus_cifar/
	./build-fuzz/tests/fuzz/fuzz_cifar -max_total_time=60 build-fuzz/corpus_cifar
	mkdir -p build-fuzz/corpus_tfevents && cp tests/fuzz/corpus_tfevents/* build-fuzz/corpus_tfevents/
	./build-fuzz/tests/fuzz/fuzz_tfevents -max_total_time=60 build-fuzz/corpus_tfevents
	mkdir -p build-fuzz/corpus_cluster && cp tests/fuzz/corpus_cluster/* build-fuzz/corpus_cluster/
	./build-fuzz/tests/fuzz/fuzz_cluster -max_total_time=60 build-fuzz/corpus_cluster

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_SAN) build-fuzz
