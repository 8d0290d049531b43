#!/bin/sh
# The demo's restart hook, run by shipdeck in the release folder after the
# switch (and again, with the old release, when a change goes back).
# It stops this host's app, starts this release's in the background and
# returns as soon as the new app listens: the health gate decides the rest.
set -eu

release_dir="$SHIPDECK_DEPLOY_TO/releases/$SHIPDECK_RELEASE"
shared="$SHIPDECK_DEPLOY_TO/shared"

# The sample app is shipdeck itself (a hidden subcommand); the demo wrote the
# path of the binary that built it into the release. Fall back to $PATH when
# that binary has moved since.
shipdeck=$(cat "$release_dir/bin/shipdeck-path" 2>/dev/null || true)
if [ ! -x "$shipdeck" ]; then
    shipdeck=$(command -v shipdeck || true)
fi
if [ -z "$shipdeck" ]; then
    echo "restart: no shipdeck binary at $(cat "$release_dir/bin/shipdeck-path" 2>/dev/null) nor on PATH" >&2
    exit 1
fi

bad=""
if [ -f "$release_dir/bad" ]; then
    bad="--bad"
fi

"$shipdeck" sample-app --stop --pid-file "$shared/app.pid"
mkdir -p "$shared/log"
# --detach: the app runs in its own process group with no tie to this hook's
# output, so the hook returns while the app keeps serving.
exec "$shipdeck" sample-app --detach \
    --port "$SHIPDECK_VAR_PORT" \
    --release "$SHIPDECK_RELEASE" \
    --pid-file "$shared/app.pid" \
    --log "$shared/log/app.log" \
    --watch "$release_dir" \
    $bad
