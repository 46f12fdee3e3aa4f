# Helpers for the command-line tests (sourced). PO_BIN, PO_TEST_DATA and PO_ST_COMPARE come
# from ctest's environment.
set -u
: "${PO_BIN:?}" "${PO_TEST_DATA:?}"
REF="$PO_TEST_DATA/reference"
EXTRA="$PO_TEST_DATA/reference_extra"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
finish() { [ "$failures" -eq 0 ] && echo "all passed" || { echo "$failures failure(s)" >&2; exit 1; }; }

# expect_error NEEDLE CMD...: CMD must exit non-zero and print exactly one line on stderr, a
# "paropt: error:" line containing NEEDLE.
expect_error() {
  local needle=$1; shift
  local rc=0
  "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
  local lines; lines=$(wc -l <"$TMP/err")
  if [ "$rc" -eq 0 ]; then fail "exit 0 for: $*"; return; fi
  if [ "$lines" -ne 1 ]; then fail "$lines stderr lines for: $* :: $(cat "$TMP/err")"; return; fi
  if ! grep -q "^paropt: error: .*$needle" "$TMP/err"; then fail "message lacks '$needle' for: $* :: $(cat "$TMP/err")"; return; fi
  echo "ok ($rc): $(cat "$TMP/err")"
}
