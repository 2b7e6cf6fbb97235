#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each with cargo-fuzz (libFuzzer), after
# replaying the committed seeds and regressions. A finding is written to fuzz/artifacts/<target>/;
# copy it to fuzz/regressions/<target>/ once fixed so every later run replays it.
#
#   fuzz/run.sh              # 60 s per target
#   fuzz/run.sh 600 detect   # ten minutes of one target
#   fuzz/run.sh 20           # the CI smoke
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "Installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked --quiet
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
# No sanitizer: the project forbids unsafe code, and without one the targets build on stable.
flags=(--sanitizer none --release --debug-assertions)
cargo fuzz build "${flags[@]}"
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "seeds/$t" "regressions/$t"
    echo "== $t: replaying seeds and regressions"
    cargo fuzz run "${flags[@]}" "$t" "regressions/$t" "seeds/$t" -- -runs=0
    echo "== $t: fuzzing ${secs}s"
    cargo fuzz run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" "regressions/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1
done
echo "fuzz: ${#targets[@]} targets, ${secs}s each, no findings"
