#!/usr/bin/env bash
# Mutation testing (docs/mutants.md): runs `cargo mutants` over each part of the tree with the
# test binaries that exercise it, and regenerates the score table of docs/mutants.md from the
# runs' outcomes.json.
#
#   scripts/mutants.sh list [PART...]   how many mutants each part has (no build)
#   scripts/mutants.sh run [PART...]    the "before" run of each part (every part if none named)
#   scripts/mutants.sh after PART...    re-runs the mutants a part's "before" run missed or
#                                       timed out on, with the tests as they are now
#   scripts/mutants.sh table            rewrites the rows of the table in docs/mutants.md of
#                                       each part whose output directory exists (runs
#                                       nothing); the other parts' rows stay
#   scripts/mutants.sh diff BASE        the mutants of src/core and src/journal on the lines
#                                       changed since the commit BASE (or in the diff file
#                                       BASE), with the tests of both (into
#                                       $MUTANTS_OUT/diff); fails when one is missed
#                                       that scripts/mutants-accepted.txt does not list;
#                                       skipped above MUTANTS_DIFF_MAX (12) mutants
#
# Parts: shared_flush service layout sim snapshotter daemon core journal.
#
# MUTANTS_OUT (default /tmp/overlaysnap-mutants) gets one directory per run: PART for the
# "before" run and PART-after for the re-run of its survivors, each with cargo mutants'
# mutants.out/. Runs build in MUTANTS_SRC (default $MUTANTS_OUT/src), a copy of the working
# tree (tracked and untracked files, .gitignore respected) refreshed before every run; its
# target/ is kept between runs so that each baseline build is incremental. Mutants are
# applied in place in that copy, one at a time, never in this checkout, except with
# MUTANTS_IN_PLACE=1 (for CI, whose checkout is disposable and whose target/ is warm), where
# they are applied in this checkout and restored by cargo mutants.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${MUTANTS_OUT:-/tmp/overlaysnap-mutants}
SRC=${MUTANTS_SRC:-$OUT/src}
[[ ${MUTANTS_IN_PLACE:-0} == 1 ]] && SRC=$REPO
PARTS=(shared_flush service layout sim snapshotter daemon core journal)

# The cargo mutants arguments of one part: package, files, test timeout and the test
# binaries (-C --test=NAME builds and runs only those), then (after `-- --`) arguments for
# the test binaries. Keep docs/mutants.md's list in step.
part_args() {
  local tests=() dir=tests skip=""
  case $1 in
  shared_flush)
    echo -p overlaysnap -f src/shared_flush.rs --minimum-test-timeout 30 -C --lib
    return ;;
  service)
    echo -p overlaysnap -f "'src/service/**'" --minimum-test-timeout 30
    tests=(service service_mutants) ;;
  layout)
    echo -p overlaysnap -f "'src/layout/**'" --minimum-test-timeout 60
    tests=(layout_cleanup layout_dirs layout_durable layout_mount_real layout_mounts
      layout_probe layout_usage layout_mutants idmap_labels) ;;
  sim)
    # The simulated disk is a test rig: the suites that run on it are its tests.
    echo -p overlaysnap -f "'src/fs/sim/**'" --minimum-test-timeout 60
    tests=(sim_fs sim_fs_quota snapshotter_faults journal_crash layout_mutants
      snapshotter_mutants journal_mutants sim_mutants) ;;
  snapshotter)
    echo -p overlaysnap -f "'src/snapshotter/**'" --minimum-test-timeout 90
    tests=(snapshotter_suite live_check idmap_labels snapshotter_faults service
      snapshotter_mutants)
    # 20 of the suite's 35 s: their mounts are the layout's, run by the layout part.
    skip="-- -- --skip layers_500 --skip layers_128" ;;
  daemon)
    echo -p overlaysnap-daemon -f daemon/src/service.rs -f daemon/src/convert.rs \
      -f daemon/src/admin.rs --minimum-test-timeout 90
    tests=(rpc admin differences service_mutants)
    dir=daemon/tests ;;
  core)
    # --lib: the core's own unit tests (size.rs, labels.rs, …).
    echo -p overlaysnap -f "'src/core/**'" --minimum-test-timeout 60 -C --lib
    tests=(core_cases core_model filter idmap_labels core_mutants) ;;
  journal)
    # --lib: the journal's own unit tests (backend.rs, store.rs, …).
    echo -p overlaysnap -f "'src/journal/**'" --minimum-test-timeout 90 -C --lib
    tests=(journal_codec journal_format journal_crash journal_replay journal_group
      journal_lock journal_observer journal_versions journal_mutants) ;;
  *)
    echo "unknown part $1 (parts: ${PARTS[*]})" >&2
    return 1 ;;
  esac
  local t
  for t in "${tests[@]}"; do
    # A test binary named here but not written yet is left out.
    if [[ -f "$REPO/$dir/$t.rs" ]]; then
      echo -C "--test=$t"
    fi
  done
  echo "$skip"
}

# Copies the working tree into $SRC, keeping $SRC/target.
refresh_copy() {
  [[ $SRC != "$REPO" ]] || return 0
  mkdir -p "$SRC"
  find "$SRC" -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
  # -m: the files get the time of the copy, so that cargo rebuilds what the last mutant
  # of an earlier run left built (with the tree's own, older times it would find it fresh).
  git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xmf - -C "$SRC"
}

# cargo mutants on the copy for part $1, output to $OUT/$2, with extra arguments after.
mutate() {
  local part=$1 dir=$2
  shift 2
  local args
  args=$(part_args "$part")
  mkdir -p "$OUT/$dir"
  echo "== $part -> $OUT/$dir" >&2
  # The journal's crash suite (run by the journal and sim parts) draws 96 sequences a run
  # (24 s of the journal part's 30); 16 per mutant (PROPTEST_CASES, read by
  # tests/journal_support) keep each mutant near 10 s.
  local cases=${PROPTEST_CASES:-}
  [[ ! $part =~ ^(journal|sim)$ || -n $cases ]] || cases=16
  # shellcheck disable=SC2086 # part_args' words are meant to split; globs are quoted there.
  (cd "$SRC" && eval env -u CARGO_TARGET_DIR CARGO_PROFILE_DEV_DEBUG=line-tables-only \
    ${cases:+PROPTEST_CASES=$cases} nice -n 19 cargo mutants --in-place --no-shuffle -o "'$OUT/$dir'" '"$@"' $args) ||
    true # cargo mutants exits non-zero when a mutant is missed; the table says which.
}

# Regexes matching exactly the mutants named in $1 (one per line), for -F.
exact_names() {
  sed -e 's/[][\\.^$*+?(){}|]/\\&/g' -e 's/^/-F^/' -e 's/$/$/' "$1"
}

table() {
  local doc=$REPO/docs/mutants.md rows part before after
  rows=$(mktemp)
  {
    echo '| part | run | mutants | caught | missed | timeout | unviable | score |'
    echo '|---|---|---|---|---|---|---|---|'
  } >"$rows"
  for part in "${PARTS[@]}"; do
    before=$OUT/$part/mutants.out/outcomes.json
    after=$OUT/$part-after/mutants.out/outcomes.json
    if [[ ! -f $before ]]; then
      # No outputs of this part here: its rows stay as the table has them.
      sed -n '/<!-- mutants-table:begin -->/,/<!-- mutants-table:end -->/p' "$doc" |
        grep -F "| \`$part\` |" >>"$rows" || true
      continue
    fi
    [[ -f $after ]] || after=/dev/null
    # "after": the before run's outcomes, each replaced by the re-run's when it has one.
    # mutants.json lists every mutant of the run, outcomes.json those tested so far.
    jq -r --arg part "$part" --slurpfile all "${before%outcomes.json}mutants.json" --slurpfile re <(if [[ -s $after ]]; then cat "$after"; else echo '{"outcomes":[]}'; fi) '
      def mutants: [.outcomes[] | select(.scenario | type == "object" and has("Mutant"))];
      def counts($run): {
          run: $run,
          n: length,
          caught: map(select(.summary == "CaughtMutant")) | length,
          missed: map(select(.summary == "MissedMutant")) | length,
          timeout: map(select(.summary == "Timeout")) | length,
          unviable: map(select(.summary == "Unviable")) | length
        };
      def row($c): ($c.caught + $c.missed + $c.timeout) as $viable
        | "| `\($part)` | \($c.run) | \($c.n) | \($c.caught) | \($c.missed) | \($c.timeout) | \($c.unviable) | "
          + (if $viable == 0 then "-" else
               (($c.caught * 1000 / $viable | round) / 10 | tostring) + " %" end) + " |";
      mutants as $before
      | (if ($before | length) < ($all[0] | length)
         then " (stopped: \($before | length) of \($all[0] | length) tested)" else "" end) as $partial
      | ($re[0] | mutants | map({key: .scenario.Mutant.name, value: .summary}) | from_entries) as $new
      | row($before | counts("before" + $partial)),
        (if ($new | length) > 0 then
           row($before | map(.summary = ($new[.scenario.Mutant.name] // .summary))
             | counts("after" + $partial))
         else empty end)
    ' "$before" >>"$rows"
  done
  # Replace what lies between the markers.
  awk -v rows="$rows" '
    /<!-- mutants-table:end -->/ { while ((getline l < rows) > 0) print l; skip = 0 }
    !skip { print }
    /<!-- mutants-table:begin -->/ { skip = 1 }
  ' "$doc" >"$doc.new"
  mv "$doc.new" "$doc"
  rm -f "$rows"
  grep -c '^| `' "$doc" >/dev/null || echo "no outcomes under $OUT" >&2
}

# Everything runs from main, which bash reads whole before starting: editing this file
# during a run does not change the run.
main() {
  cmd=${1:-}
  shift || true
  case $cmd in
  list)
    for part in "${@:-${PARTS[@]}}"; do
      args=$(part_args "$part")
      # shellcheck disable=SC2086
      echo "$part: $(eval cargo mutants --list $args 2>/dev/null | wc -l)"
    done ;;
  run)
    refresh_copy
    for part in "${@:-${PARTS[@]}}"; do
      mutate "$part" "$part"
    done ;;
  after)
    [[ $# -gt 0 ]] || { echo "after: name the parts" >&2; exit 2; }
    refresh_copy
    for part in "$@"; do
      # The mutants missed, and those that timed out (a hung test may fail now instead).
      survivors=$OUT/$part-survivors.txt
      cat "$OUT/$part/mutants.out/missed.txt" "$OUT/$part/mutants.out/timeout.txt" >"$survivors"
      if [[ ! -s $survivors ]]; then
        echo "$part: nothing missed" >&2
        continue
      fi
      mapfile -t filters < <(exact_names "$survivors")
      mutate "$part" "$part-after" "${filters[@]}"
    done ;;
  table)
    table ;;
  diff)
    base=${1:?diff: name the base commit (or a diff file)}
    mkdir -p "$OUT"
    if [[ -f $base ]]; then
      cp "$base" "$OUT/diff.patch"
    else
      git diff "$base" -- src/core src/journal >"$OUT/diff.patch"
    fi
    if [[ ! -s $OUT/diff.patch ]]; then
      echo "no change to src/core or src/journal since $base" >&2
      exit 0
    fi
    refresh_copy
    # Only as many mutants as fit in about 10 minutes of CI (docs/mutants.md, "CI"): a larger
    # change is left to full runs of the parts.
    count=$(cd "$SRC" && cargo mutants --list --in-diff "$OUT/diff.patch" -p overlaysnap \
      -f 'src/core/**' -f 'src/journal/**' | wc -l)
    if ((count > ${MUTANTS_DIFF_MAX:-12})); then
      echo "$count mutants on the changed lines of src/core and src/journal: more than" \
        "${MUTANTS_DIFF_MAX:-12}, left to scripts/mutants.sh run core journal" >&2
      exit 0
    fi
    echo "$count mutants on the changed lines of src/core and src/journal" >&2
    # One run over both parts, with the test binaries of both (their -f filters dropped).
    args="$(part_args core | sed 's/ -f [^ ]*//; s/--minimum-test-timeout [0-9]*//')
      $(part_args journal | sed 's/ -f [^ ]*//; s/--minimum-test-timeout [0-9]*//; s/-p overlaysnap//')"
    rm -rf "$OUT/diff"
    mkdir -p "$OUT/diff"
    status=0
    # shellcheck disable=SC2086
    (cd "$SRC" && eval env -u CARGO_TARGET_DIR nice -n 19 cargo mutants --in-place --no-shuffle \
      --in-diff "'$OUT/diff.patch'" -f "'src/core/**'" -f "'src/journal/**'" \
      --minimum-test-timeout 90 $args -o "'$OUT/diff'") || status=$?
    # 0: every mutant caught; 3: some only timed out (detected); 2: some missed; anything
    # else (4: the tests fail unmutated) is a failure of its own.
    case $status in
    0 | 2 | 3) ;;
    *) exit "$status" ;;
    esac
    # A missed mutant fails unless docs/mutants.md explains it: scripts/mutants-accepted.txt
    # lists those as "file: description", the mutant's name without its line and column.
    missed=$(sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /' "$OUT/diff/mutants.out/missed.txt" |
      grep -vxF -f <(grep -v '^#' "$REPO/scripts/mutants-accepted.txt") || true)
    if [[ -n $missed ]]; then
      echo "mutants on the changed lines that no test catches:" >&2
      echo "$missed" >&2
      exit 2
    fi ;;
  *)
    sed -n '2,20p' "$0" >&2
    exit 2 ;;
  esac
}

main "$@"
exit
