#!/bin/sh
# The demo's blue/green switch, run by shipdeck in the release folder of the
# slot taking traffic (SHIPDECK_SLOT, port SHIPDECK_SLOT_PORT) once that slot
# passed its health gate, and again to switch back.
# The host's front (its `port`) sends each new connection to the port in
# shared/upstream: replacing that file in one rename moves traffic. The front
# is started here when it does not run (the host's first switch, or after
# the demo's apps were stopped); it watches the host's folder, not a
# release's, so cleaning up releases never stops it.
set -eu

shared="$SHIPDECK_DEPLOY_TO/shared"
upstream="$shared/upstream"
tmp="$shared/.upstream.tmp-$$"

case "${SHIPDECK_SLOT_PORT:-}" in
    '' | *[!0-9]*)
        echo "switch: SHIPDECK_SLOT_PORT=${SHIPDECK_SLOT_PORT:-} is not a port" >&2
        exit 1
        ;;
esac
printf '%s\n' "$SHIPDECK_SLOT_PORT" > "$tmp"
mv -f "$tmp" "$upstream"

mkdir -p "$shared/log"
exec "$SHIPDECK_DEPLOY_TO/releases/$SHIPDECK_RELEASE/bin/sample-app" front --detach \
    --listen "$SHIPDECK_VAR_PORT" \
    --upstream-file "$upstream" \
    --pid-file "$shared/front.pid" \
    --log "$shared/log/app.log" \
    --watch "$SHIPDECK_DEPLOY_TO"
