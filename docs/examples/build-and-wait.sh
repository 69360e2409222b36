#!/usr/bin/env bash
# Request a Goldsmith image build and wait until it has finished.
#
#   GOLDSMITH_URL=https://goldsmith.example.com GOLDSMITH_TOKEN=gst_... \
#       build-and-wait.sh GOLD_IMAGE VERSION [DEPARTMENT/LAYER@VERSION ...]
#
# Needs bash, curl and python3 (for JSON; no jq). Progress goes to standard error; the finished
# build (JSON, with its outputs: the image versions it made) goes to standard output.
#
# Exit status: 0 the build succeeded; 1 it failed, was canceled or only partially succeeded;
# 2 the request was refused (the validation problems are printed); 3 gave up (timeout, or the
# portal kept failing).
#
# Settings (environment): POLL_SECONDS (default 30) between status requests; TIMEOUT_MINUTES
# (default 300); IDEMPOTENCY_KEY (default: the CI run's id when there is one), so that a retried
# pipeline step gets the build it already requested instead of a second one. Whenever the portal
# answers 429 (or 503) the script waits the Retry-After it was given before asking again.
set -euo pipefail

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ "$#" -ge 2 ] || usage
: "${GOLDSMITH_URL:?set GOLDSMITH_URL to the portal, e.g. https://goldsmith.example.com}"
: "${GOLDSMITH_TOKEN:?set GOLDSMITH_TOKEN to an API token (profile page or manage.py createtoken)}"
POLL_SECONDS="${POLL_SECONDS:-30}"
TIMEOUT_MINUTES="${TIMEOUT_MINUTES:-300}"
IDEMPOTENCY_KEY="${IDEMPOTENCY_KEY:-${GITHUB_RUN_ID:+github-${GITHUB_RUN_ID}-${GITHUB_RUN_ATTEMPT:-1}}}"
IDEMPOTENCY_KEY="${IDEMPOTENCY_KEY:-${BUILD_BUILDID:+azdo-${BUILD_BUILDID}}}"
API="${GOLDSMITH_URL%/}/api/v1"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
say() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# json FILE EXPRESSION: evaluate a Python expression over the document `d` read from FILE.
json() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# call METHOD URL [BODY_FILE]: one request with retries for 429/503/5xx and network errors.
# Sets STATUS and leaves the answer in $work/body.
call() {
    local method="$1" url="$2" data="${3:-}" attempt=0 wait
    local -a args=(-sS -X "$method" -o "$work/body" -D "$work/headers" -w '%{http_code}'
                   -H "Authorization: Bearer $GOLDSMITH_TOKEN" -H 'Accept: application/json')
    if [ -n "$data" ]; then args+=(-H 'Content-Type: application/json' --data-binary "@$data"); fi
    if [ -n "$IDEMPOTENCY_KEY" ] && [ "$method" = POST ]; then args+=(-H "Idempotency-Key: $IDEMPOTENCY_KEY"); fi
    while :; do
        attempt=$((attempt + 1))
        if ! STATUS="$(curl "${args[@]}" "$url")"; then STATUS=000; fi
        case "$STATUS" in
            429|503)
                wait="$(tr -d '\r' < "$work/headers" | awk -F': *' 'tolower($1) == "retry-after" {print $2}' | tail -n1)"
                case "$wait" in ''|*[!0-9]*) wait=$((attempt * 5)) ;; esac
                say "the portal asks us to slow down ($STATUS): waiting ${wait}s (Retry-After)"
                sleep "$wait"
                continue ;;
            000|5??)
                if [ "$attempt" -ge 6 ]; then say "giving up: $method $url answered $STATUS $attempt times"; exit 3; fi
                say "$method $url answered $STATUS; trying again in $((attempt * 5))s"
                sleep $((attempt * 5))
                continue ;;
        esac
        return 0
    done
}

refused() {
    say "refused ($STATUS): $(json "$work/body" 'd["error"]["message"]' 2>/dev/null || cat "$work/body")"
    json "$work/body" '"\n".join("  %s  %s  %s" % (p["rule"], p["path"] or "(template)", p["message"]) for p in d["error"].get("problems", []))' >&2 || true
    exit 2
}

# The request body, built by Python so that any layer name is quoted correctly.
python3 -c 'import json, sys; print(json.dumps({"gold_image": sys.argv[1], "version": sys.argv[2], "layers": sys.argv[3:]}))' \
    "$@" > "$work/request.json"

call POST "$API/builds/" "$work/request.json"
[ "$STATUS" = 202 ] || refused
build_url="$(json "$work/body" 'd["url"]')"
say "requested build $(json "$work/body" 'd["id"]'): $(json "$work/body" 'd["web_url"]')"

deadline=$(( $(date +%s) + TIMEOUT_MINUTES * 60 ))
last=""
while :; do
    call GET "$build_url"
    [ "$STATUS" = 200 ] || refused
    state="$(json "$work/body" 'd["state"]')"
    now="$state$(json "$work/body" '"/" + d["sub_state"] if d["sub_state"] else ""')"
    if [ "$now" != "$last" ]; then say "state: $now"; last="$now"; fi
    case "$state" in
        succeeded) cat "$work/body"; echo; exit 0 ;;
        failed|canceled|partially_succeeded)
            say "$state: $(json "$work/body" 'd["error_code"] + " " + d["error_message"]')"
            cat "$work/body"; echo; exit 1 ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then say "still $state after ${TIMEOUT_MINUTES} minutes: giving up"; exit 3; fi
    sleep "$POLL_SECONDS"
done
