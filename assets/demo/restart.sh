#!/bin/sh
# The demo's restart hook, run by shipdeck in the release folder after the
# switch (and again, with the old release, when a change goes back).
# It stops this host's app, starts this release's in the background and
# returns as soon as the new app listens: the health gate decides the rest.
#
# On a blue/green host shipdeck runs it in the idle slot (slots/blue or
# slots/green) with SHIPDECK_SLOT and SHIPDECK_SLOT_PORT: it then stops and
# starts that slot's app only (shared/app-$SHIPDECK_SLOT.pid), on the slot's
# port, and leaves the other slot serving until bin/switch moves traffic.
set -eu

release_dir="$SHIPDECK_DEPLOY_TO/releases/$SHIPDECK_RELEASE"
shared="$SHIPDECK_DEPLOY_TO/shared"
sample_app="$release_dir/bin/sample-app"

bad=""
if [ -f "$release_dir/bad" ]; then
    bad="--bad"
fi

if [ -n "${SHIPDECK_SLOT:-}" ]; then
    case "$SHIPDECK_SLOT" in
        blue | green) ;;
        *)
            echo "restart: SHIPDECK_SLOT=$SHIPDECK_SLOT is neither blue nor green" >&2
            exit 1
            ;;
    esac
    pid_file="$shared/app-$SHIPDECK_SLOT.pid"
    port="$SHIPDECK_SLOT_PORT"
    # It makes traffic only while the front's upstream file names its port.
    set -- --slot "$SHIPDECK_SLOT" --upstream-file "$shared/upstream"
else
    pid_file="$shared/app.pid"
    port="$SHIPDECK_VAR_PORT"
    set --
fi

"$sample_app" --stop --pid-file "$pid_file"
mkdir -p "$shared/log"
# --detach: the app runs in its own process group with no tie to this hook's
# output, so the hook returns while the app keeps serving.
exec "$sample_app" --detach \
    --port "$port" \
    --release "$SHIPDECK_RELEASE" \
    --pid-file "$pid_file" \
    --log "$shared/log/app.log" \
    --watch "$release_dir" \
    $bad "$@"
