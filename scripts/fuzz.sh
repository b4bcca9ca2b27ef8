#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/) and runs each for a bounded time.
#   scripts/fuzz.sh [seconds-per-target] [target...]    default: 60 s, every target
# The targets exist only with RESOLVERD_FUZZ=1 (Package.swift) and build into .build-fuzz with
# libFuzzer and AddressSanitizer (debug: Swift's bounds and overflow checks stay on). libFuzzer's
# runtime ships with the Swift toolchain (lib/clang/*/lib/linux/libclang_rt.fuzzer*), so nothing
# is installed beyond scripts/install-deps.sh. Each target starts from Fuzz/corpus/<target>/ and
# writes what it finds to a temporary corpus; crashes, timeouts, leaks and OOMs land in
# .build-fuzz/artifacts/<target>/, logs in .build-fuzz/logs/<target>.log. Ends with one line per
# target (executions, exec/s, coverage, findings) and exits 1 when anything was found.
# Environment: FUZZ_JOBS=N runs N targets at once (default 1); FUZZ_KEEP_GOING=1 keeps fuzzing
# past a crash (libFuzzer's fork mode) to collect several; FUZZ_NICE (default 19).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
all_targets=(fuzz-query-reader fuzz-codec fuzz-response fuzz-config fuzz-api-json)

seconds="${1:-60}"
[[ $# -gt 0 ]] && shift
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all_targets[@]}")
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -lt 1 ]]; then
    echo "usage: scripts/fuzz.sh [seconds-per-target] [target...]" >&2
    exit 2
fi
for target in "${targets[@]}"; do
    [[ -d "Fuzz/$target" ]] || { echo "unknown target: $target (have: ${all_targets[*]})" >&2; exit 2; }
done

scratch="$root/.build-fuzz"
nice_level="${FUZZ_NICE:-19}"
jobs="${FUZZ_JOBS:-1}"

scripts/install-deps.sh

export RESOLVERD_FUZZ=1
# A trap ends in libFuzzer's report (and the crash file), not in Swift's backtracer as well.
export SWIFT_BACKTRACE=enable=no
# The debug build's crash switch (a CH TXT query that traps, for the worker tests) stays disarmed.
unset RESOLVERD_CRASH_SWITCH

# SwiftPM passes one -sanitize= per --sanitize, and swiftc keeps only the last of them (C targets
# get both from clang either way): the combined flag at the end gives Swift code the fuzzer's
# coverage as well as ASan.
build=(swift build -c debug --scratch-path "$scratch" --sanitize=fuzzer --sanitize=address
    -Xswiftc -sanitize=fuzzer,address)
started=$(date +%s)
for target in "${targets[@]}"; do
    echo "building $target" >&2
    # gold warns once per ASan check symbol it cannot export; nothing to act on.
    nice -n "$nice_level" "${build[@]}" --product "$target" 2>&1 | sed '/Cannot export local symbol/d' >&2
done
bin="$(nice -n "$nice_level" "${build[@]}" --show-bin-path)"
echo "built in $(($(date +%s) - started)) s" >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/resolverd-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$scratch/logs"

# LeakSanitizer checks every input that allocates more than it frees; Fuzz/lsan.supp names the
# few leaks that are not resolverd's (a fixture that lives until exit, one in ldns).
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:handle_abort=1:symbolize=1:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$root/Fuzz/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"

run() {
    local target=$1
    local corpus="$work/$target" artifacts="$scratch/artifacts/$target" log="$scratch/logs/$target.log"
    mkdir -p "$corpus" "$artifacts"
    : > "$log"
    local options=(
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
        -artifact_prefix="$artifacts/" -max_len="$(max_len "$target")"
    )
    [[ -f "Fuzz/dict/$target.dict" ]] && options+=(-dict="Fuzz/dict/$target.dict")
    if [[ "${FUZZ_KEEP_GOING:-0}" == "1" ]]; then
        options+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    # The new inputs go to the temporary corpus (the first folder); the seeds are only read.
    # `timeout` is the backstop should the fuzzer itself hang.
    timeout --kill-after=30 $((seconds + 120)) nice -n "$nice_level" \
        "$bin/$target" "${options[@]}" "$corpus" "Fuzz/corpus/$target" >"$log" 2>&1 || true
    # Kept for the next run's seeds when FUZZ_SAVE_CORPUS names a folder.
    if [[ -n "${FUZZ_SAVE_CORPUS:-}" ]]; then
        mkdir -p "$FUZZ_SAVE_CORPUS/$target"
        cp -n "$corpus"/* "$FUZZ_SAVE_CORPUS/$target/" 2>/dev/null || true
    fi
}

max_len() {
    case "$1" in
        # Responses come over TCP too: room for many records.
        fuzz-response | fuzz-codec) echo 16384 ;;
        fuzz-config) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

# Findings are the artifacts newer than this mark.
mark="$work/.started"
touch "$mark"
running=0
for target in "${targets[@]}"; do
    echo "fuzzing $target for ${seconds} s" >&2
    run "$target" &
    running=$((running + 1))
    if [[ $running -ge $jobs ]]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

found=0
summary="$scratch/fuzz-summary.txt"
{
printf '%-18s %8s %12s %8s %8s %9s  %s\n' target seconds executions exec/s cov features findings
for target in "${targets[@]}"; do
    log="$scratch/logs/$target.log"
    stat_of() { grep -a "^stat::$1:" "$log" | tail -1 | awk '{print $2}'; }
    last=$(grep -aE '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    runs="" speed=""
    if [[ "${FUZZ_KEEP_GOING:-0}" != "1" ]]; then
        runs=$(stat_of number_of_executed_units)
        speed=$(stat_of average_exec_per_sec)
    fi
    if [[ -z "$runs" ]]; then
        # Fork mode (each job prints its own stats) and a crash (no final stats): the last
        # status line has the totals.
        runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")
        speed=$(sed -nE 's/.* exec\/s:? ([0-9]+).*/\1/p' <<<"$last")
    fi
    findings=$(find "$scratch/artifacts/$target" -maxdepth 1 -type f -newer "$mark" \
        \( -name 'crash-*' -o -name 'timeout-*' -o -name 'leak-*' -o -name 'oom-*' \) | sort)
    count=$(grep -c . <<<"$findings" || true)
    printf '%-18s %8s %12s %8s %8s %9s  %s\n' "$target" "$seconds" "${runs:-?}" "${speed:-?}" "${cov:-?}" \
        "${ft:-?}" "$count"
    # Each finding (the first five) replayed once, for the line that says what went wrong.
    head -5 <<<"$findings" | while read -r file; do
        [[ -n "$file" ]] || continue
        reason=$(timeout 120 "$bin/$target" -runs=1 -timeout=10 "$file" 2>&1 \
            | grep -m1 -aE 'Fatal error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' || true)
        echo "    $file"
        echo "        ${reason:-(does not reproduce alone)}"
    done
done
} | tee "$summary"
grep -qE ' [1-9][0-9]*$' <(awk 'NR > 1 && /^fuzz-/' "$summary") && found=1
exit $found
