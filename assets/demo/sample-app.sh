#!/bin/sh
# Runs `shipdeck sample-app "$@"`: the demo's app and front are shipdeck
# itself (a hidden subcommand). The demo wrote the path of the binary that
# built it into the release; fall back to $PATH when that binary has moved
# since. The other hooks (restart, switch, stop) go through here.
set -eu

release_dir="$SHIPDECK_DEPLOY_TO/releases/$SHIPDECK_RELEASE"
shipdeck=$(cat "$release_dir/bin/shipdeck-path" 2>/dev/null || true)
if [ ! -x "$shipdeck" ]; then
    shipdeck=$(command -v shipdeck || true)
fi
if [ -z "$shipdeck" ]; then
    echo "sample-app: no shipdeck binary at $(cat "$release_dir/bin/shipdeck-path" 2>/dev/null) nor on PATH" >&2
    exit 1
fi
exec "$shipdeck" sample-app "$@"
